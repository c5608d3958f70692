/* Sift: the segment create/edit page (form#segment-form).
 *
 * - A condition builder inside #builder: an "all of these" list of rows and
 *   groups ("Match all" / "Match any", negatable, nested to any shape),
 *   built from the page's data-* JSON, with undo and redo.
 * - A text view of the same condition; the server parses it (preview with
 *   sample 0) when going back to the builder.
 * - A live preview (POST /v1/segments:preview), debounced, in-flight requests
 *   aborted and stale answers dropped.
 * - Save (POST or PATCH /v1/segments) and Delete, every error shown where it
 *   belongs: inside the row a JSON pointer leads to, at the text's line and
 *   column, next to the name, or in #form-error.
 *
 * The rows' controls are the model: the tree is read from them on demand.
 * An event row's `where` is made of property rows too; typed as text
 * instead ("Edit as text"), the server turns it into a tree (cached per
 * text) so that what is sent stays one JSON tree whose errors point at
 * rows. Plain ES2020 modules, no dependencies, no build step.
 *
 * This entry is the form itself: view switching, save, delete, start. Its
 * siblings import one way only, each from those listed above it:
 *   builder_terms.js    page data, operators, values, the canonical text, requests
 *   builder_widgets.js  DOM helpers, value editors, the field picker
 *   builder_groups.js   groups of rows, nested ("Match all" / "Match any", "Not")
 *   builder_suggest.js  event types' properties, value suggestions
 *   builder_where.js    an event's where as property rows, or as text
 *   builder_rows.js     condition rows, the root list, tree <-> rows
 *   builder_history.js  undo and redo
 *   builder_preview.js  the two views, error placement, live preview, kind
 */
import {
  form, editingId, formErrorEl, nameInput, descriptionInput, testBox, INITIAL_TREE, INITIAL_TEXT,
  asArray, printTree, Unfit, layoutOf, api,
} from "./builder_terms.js";
import { h } from "./builder_widgets.js";
import {
  root, addConditionBtn, updateEmptyState, loadLayout, buildTree, builderText, builderView,
} from "./builder_rows.js";
import { createHistory } from "./builder_history.js";
import {
  textArea, builderBtn, textBtn, mode, showNote, setMode, clearTextError, showTextError,
  clearFormError, showFormError, errorParagraph, placeConditionError, isStatic, changed,
  applyKind,
} from "./builder_preview.js";

// -- views -------------------------------------------------------------------------------------

let textFromBuilder = null; // the text shown when the builder was left, to skip a re-parse

textBtn.addEventListener("click", () => {
  if (mode === "text") return;
  const { text: printed, left } = builderText();
  textArea.value = printed;
  textFromBuilder = printed;
  clearTextError();
  root.clearErrors();
  setMode("text");
  showNote(left ? `${left} unfinished condition${left === 1 ? " was" : "s were"} left out of the text.` : "");
  textArea.focus();
  changed(true);
});

builderBtn.addEventListener("click", async () => {
  if (mode === "builder" || builderBtn.disabled) return;
  const source = textArea.value;
  if (source === textFromBuilder) {
    clearTextError();
    showNote("");
    setMode("builder");
    changed(true);
    return;
  }
  builderBtn.disabled = true;
  builderBtn.setAttribute("aria-busy", "true");
  try {
    const res = await api("POST", "/v1/segments:preview", { condition: source, sample: 0 });
    if (textArea.value !== source) return; // typed on meanwhile: let them press again
    if (!res.ok) {
      showTextError(res.error, true);
      showNote("Fix the condition text before going back to the builder.");
      return;
    }
    let layout;
    try {
      layout = layoutOf(res.data.condition_tree);
    } catch (err) {
      if (!(err instanceof Unfit)) throw err;
      showNote(`This condition can't be shown in the builder: ${err.message}. Keep editing it as text.`);
      return;
    }
    loadLayout(layout);
    history.record(null);
    clearTextError();
    showNote("");
    setMode("builder");
    textFromBuilder = null;
    const first = root.allRows()[0];
    (first ? first.fieldSel : addConditionBtn).focus();
    changed(true);
  } finally {
    builderBtn.disabled = false;
    builderBtn.removeAttribute("aria-busy");
  }
});

textArea.addEventListener("input", () => changed());

// -- save -------------------------------------------------------------------------------------

let nameError = null;

function showNameError(message) {
  if (!nameError) {
    nameError = h("div", { id: "name-error", class: "field-error", role: "alert" });
    nameInput.insertAdjacentElement("afterend", nameError);
  }
  nameError.textContent = message;
  nameError.hidden = false;
  nameInput.setAttribute("aria-invalid", "true");
  nameInput.setAttribute("aria-describedby", "name-error");
}

function clearNameError() {
  if (nameError) {
    nameError.textContent = "";
    nameError.hidden = true;
  }
  nameInput.removeAttribute("aria-invalid");
  nameInput.removeAttribute("aria-describedby");
}

nameInput.addEventListener("input", clearNameError);

const saveBtn = form.querySelector('button[type="submit"]');
let saving = false;
// A condition over all time, or over a window longer than any live one,
// is counted from the stored event history: the save can take a while.
const countingNote = document.createElement("p");
countingNote.className = "muted";
countingNote.id = "counting-history";
countingNote.setAttribute("role", "status");
countingNote.hidden = true;
if (saveBtn) saveBtn.insertAdjacentElement("afterend", countingNote);
let countingTimer = null;

function showCounting(on) {
  clearTimeout(countingTimer);
  countingNote.hidden = true;
  if (on) {
    countingTimer = setTimeout(() => {
      countingNote.textContent = "Counting… conditions over all time or long windows read the stored event history; this can take a while.";
      countingNote.hidden = false;
    }, 400);
  }
}

function setSaving(on) {
  saving = on;
  if (saveBtn) {
    saveBtn.disabled = on;
    if (on) saveBtn.setAttribute("aria-busy", "true");
    else saveBtn.removeAttribute("aria-busy");
  }
  form.classList.toggle("is-saving", on);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (saving) return;
  clearNameError();
  clearFormError();
  const name = nameInput.value.trim();
  let invalid = false;
  if (name === "") {
    showNameError("Give the segment a name.");
    nameInput.focus();
    invalid = true;
  }
  const dynamic = !isStatic();
  const body = { name, description: descriptionInput ? descriptionInput.value : "" };
  if (!editingId) body.kind = dynamic ? "dynamic" : "static";
  let built = null;
  if (dynamic) {
    if (mode === "text") {
      body.condition = textArea.value;
    } else {
      setSaving(true);
      try {
        built = await buildTree(true);
      } finally {
        setSaving(false);
      }
      root.clearErrors();
      if (built.problems.length) {
        for (const p of built.problems) p.row.showError(p.message, p.control);
        if (!invalid) built.problems[0].row.focus();
        return;
      }
      body.condition_tree = built.tree;
    }
  } else if (!editingId && testBox) {
    body.test = testBox.checked;
  }
  if (invalid) return;

  setSaving(true);
  showCounting(true);
  const res = editingId
    ? await api("PATCH", `/v1/segments/${encodeURIComponent(editingId)}`, body)
    : await api("POST", "/v1/segments", body);
  showCounting(false);
  if (res.ok) {
    const segment = res.data || {};
    const evaluation = segment.evaluation || {};
    const id = segment.id || editingId;
    const query = `entered=${Number(evaluation.entered) || 0}&exited=${Number(evaluation.exited) || 0}`
      + `&history=${Number(evaluation.history_events_read) || 0}`;
    leaving = true;
    window.location.assign(`/ui/segments/${encodeURIComponent(id)}?${query}`);
    return;
  }
  setSaving(false);
  const error = res.error;
  if (error.code === "name_taken" || (error.code === "validation_failed" && /\bname\b/i.test(error.message)
    && !/condition/i.test(error.message))) {
    showNameError(error.message);
    nameInput.focus();
  } else if (error.code === "invalid_condition" && placeConditionError(error, built, "save")) {
    // shown in its row or under the text
  } else {
    showFormError("save", errorParagraph(error));
    formErrorEl.scrollIntoView({ block: "nearest" });
  }
});

// -- delete ----------------------------------------------------------------------------------

const deleteBtn = document.getElementById("delete-segment");
if (deleteBtn && editingId) {
  deleteBtn.addEventListener("click", async () => {
    const label = nameInput.defaultValue || nameInput.value || "this segment";
    clearFormError();
    // Say it is used before asking to confirm something that would fail.
    deleteBtn.disabled = true;
    const used = await api("GET", `/v1/segments/${encodeURIComponent(editingId)}/usages`);
    deleteBtn.disabled = false;
    if (used.ok && asArray(used.data && used.data.items).length) {
      showUsages(asArray(used.data.items));
      return;
    }
    if (!window.confirm(`Delete the segment “${label}”? This can't be undone.`)) return;
    deleteBtn.disabled = true;
    const res = await api("DELETE", `/v1/segments/${encodeURIComponent(editingId)}`);
    if (res.ok) {
      leaving = true;
      window.location.assign("/ui/segments");
      return;
    }
    deleteBtn.disabled = false;
    const error = res.error;
    if (error.code === "segment_in_use") {
      showUsages(asArray(error.details.usages));
    } else {
      showFormError("delete", errorParagraph(error));
    }
    formErrorEl.scrollIntoView({ block: "nearest" });
  });
}

/** Where the segment is used, in #form-error: it can't be deleted until they change. */
function showUsages(usages) {
  const list = h("ul", { class: "usages" });
  for (const usage of usages) {
    const item = h("li", {});
    if (usage.type === "segment") {
      item.append("Segment ", h("a", { href: `/ui/segments/${encodeURIComponent(usage.id)}`, text: usage.name || usage.id }));
    } else if (usage.type === "workflow") {
      item.append("Workflow ", h("a", { href: `/ui/workflows/${encodeURIComponent(usage.id)}`, text: usage.name || usage.id }));
    } else {
      item.append(`${usage.type ? usage.type[0].toUpperCase() + usage.type.slice(1) : "Used by"} `,
        h("strong", { text: usage.name || usage.id }));
    }
    if (usage.role) item.append(h("span", { class: "muted", text: ` (${usage.role})` }));
    list.append(item);
  }
  showFormError("delete",
    h("p", { id: "segment-used", text: `This segment is used, so it can't be deleted while ${usages.length === 1 ? "this refers" : "these refer"} to it:` }),
    list,
    h("p", { class: "muted", text: "Edit or delete them first." }));
  formErrorEl.scrollIntoView({ block: "nearest" });
}

// -- start -------------------------------------------------------------------------------------

setMode("builder");
updateEmptyState();
if (INITIAL_TREE) {
  try {
    loadLayout(layoutOf(INITIAL_TREE));
  } catch (err) {
    if (!(err instanceof Unfit)) throw err;
    textArea.value = INITIAL_TEXT || printTree(INITIAL_TREE, "contact");
    textFromBuilder = null;
    setMode("text");
    showNote(`This condition can't be shown in the builder: ${err.message}. Edit it as text.`);
  }
} else if (INITIAL_TEXT.trim() !== "") {
  textArea.value = INITIAL_TEXT;
  setMode("text");
}
applyKind();

// -- undo, and leaving with unsaved changes ------------------------------------------------------

const history = createHistory({
  group: root,
  container: builderView,
  mount: builderView.querySelector(".builder-actions"),
  afterRestore: () => {
    updateEmptyState();
    root.clearErrors();
    changed(true);
  },
});
history.reset();

let leaving = false;
const formState = () => JSON.stringify([
  nameInput.value, descriptionInput ? descriptionInput.value : "", isStatic(), testBox ? testBox.checked : false,
  mode, mode === "text" ? textArea.value : history.snapshot(),
]);
const savedState = formState();

// Cancel is a link: leaving by it, or any other way, asks while something
// is unsaved (the browser's own "Leave site?" question).
window.addEventListener("beforeunload", (event) => {
  if (leaving || formState() === savedState) return;
  event.preventDefault();
  event.returnValue = "";
});
