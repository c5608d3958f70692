/* Sift: the workflow form's conditions, made with the segment builder's
 * modules (no copy of them): the filter ("Only for contacts matching") as
 * condition rows in #builder, and an event trigger's `where` as property
 * rows. workflows.js (a classic script that owns the rest of the form)
 * reads and fills them through `window.siftWorkflowBuilder`, announced by a
 * "sift-builder-ready" event.
 */
import { builderEl, layoutOf, printTree, Unfit, api } from "./builder_terms.js";
import { h } from "./builder_widgets.js";
import {
  root, builderView, loadLayout, buildTree, updateEmptyState,
} from "./builder_rows.js";
import { whereEditor } from "./builder_where.js";
import { createHistory } from "./builder_history.js";

const filterText = document.getElementById("wf-filter");
const filterTextBox = document.getElementById("wf-filter-text-box");
const filterNote = h("p", { class: "builder-note muted", role: "status" });
const toggle = h("button", { type: "button", class: "link-button filter-toggle", text: "Edit as text" });
builderEl.replaceChildren(builderView, filterNote);
builderEl.insertAdjacentElement("afterend", toggle);
let mode = "rows";

function setMode(next) {
  mode = next;
  builderView.hidden = next !== "rows";
  if (filterTextBox) filterTextBox.hidden = next !== "text";
  toggle.textContent = next === "rows" ? "Edit as text" : "Edit with rows";
}

const history = createHistory({
  group: root,
  container: builderView,
  mount: builderView.querySelector(".builder-actions"),
  afterRestore: () => {
    updateEmptyState();
    root.clearErrors();
  },
});

toggle.addEventListener("click", async () => {
  filterNote.textContent = "";
  if (mode === "rows") {
    const built = await buildTree(false);
    filterText.value = built.tree.all.length ? printTree(built.tree, "contact") : "";
    setMode("text");
    filterText.focus();
    return;
  }
  const source = filterText.value.trim();
  if (source === "") {
    loadLayout([]);
    history.record(null);
    setMode("rows");
    return;
  }
  const res = await api("POST", "/v1/segments:preview", { condition: source, sample: 0 });
  if (!res.ok) {
    filterNote.textContent = `Fix the filter text first: ${res.error.message}`;
    return;
  }
  try {
    loadLayout(layoutOf(res.data.condition_tree));
  } catch (err) {
    if (!(err instanceof Unfit)) throw err;
    filterNote.textContent = `Rows can't show this filter: ${err.message}. Keep it as text.`;
    return;
  }
  history.record(null);
  setMode("rows");
  toggle.focus();
});

// The event trigger's where, beside its event type.
const eventInput = document.getElementById("wf-trigger-event");
const whereBox = document.getElementById("wf-trigger-where-rows");
const where = whereEditor(eventInput, () => {});
whereBox.append(where.el);
whereBox.addEventListener("keydown", (event) => {
  // Enter in a row's box must not save the whole form.
  if (event.key === "Enter" && event.target instanceof HTMLInputElement) event.preventDefault();
});

/** The error of a row or property row the JSON pointer `path` leads to; true when shown. */
function placeIn(owners, path, message) {
  let best = null;
  for (const [pointer, owner] of owners) {
    if ((path === pointer || path.startsWith(`${pointer}/`)) && (!best || pointer.length > best[0].length)) best = [pointer, owner];
  }
  if (!best) return false;
  const [pointer, owner] = best;
  const tail = path.slice(pointer.length).replace(/^\/not(?=\/|$)/, "");
  owner.showError(message, owner.controlFor ? owner.controlFor(tail) : null);
  if (owner.focus) owner.focus();
  return true;
}

let lastFilter = null;
let lastWhere = null;

window.siftWorkflowBuilder = {
  /** {value} (a tree, text or null) or {error} when a row isn't finished. */
  async filter() {
    root.clearErrors();
    if (mode === "text") {
      const text = filterText.value.trim();
      return { value: text === "" ? null : text };
    }
    const built = await buildTree(true);
    if (built.problems.length) {
      for (const p of built.problems) p.row.showError(p.message, p.control);
      built.problems[0].row.focus();
      return { error: true };
    }
    lastFilter = built;
    return { value: built.tree.all.length ? built.tree : null };
  },
  loadFilter(tree, text) {
    try {
      loadLayout(tree ? layoutOf(tree) : []);
      setMode("rows");
    } catch (err) {
      if (!(err instanceof Unfit)) throw err;
      filterText.value = text || "";
      setMode("text");
      filterNote.textContent = `Rows can't show this filter: ${err.message}.`;
    }
    history.reset();
  },
  /** {value} (a tree, text or undefined) or {error}. */
  where() {
    for (const row of where.group.allRows()) row.clearError();
    const read = where.read();
    if (read.state === "bad" || read.state === "empty") {
      if (read.row) read.row.showError(read.message || "Finish or remove this property condition", read.control);
      return { error: true };
    }
    lastWhere = read;
    if (read.state === "text") return { value: read.source };
    if (read.state === "ok") return { value: read.tree };
    return { value: undefined };
  },
  loadWhere(tree) {
    if (tree) where.load(tree);
  },
  /** Shows a condition error of the server in its row; true when it found one. */
  placeError(error) {
    const path = String((error.details && error.details.path) || "");
    const message = String(error.message).replace(/ at (\/\S*)?$/, "");
    if (path.startsWith("/filter") && lastFilter && mode === "rows") {
      return placeIn(lastFilter.owners, path.slice("/filter".length), message);
    }
    if (path.startsWith("/trigger/where") && lastWhere && lastWhere.owners) {
      return placeIn(lastWhere.owners, path.slice("/trigger/where".length), message);
    }
    return false;
  },
};

setMode("rows");
updateEmptyState();
history.reset();
window.dispatchEvent(new Event("sift-builder-ready"));
