/* Sift's segment form: the condition's two views and what the server says
 * about the condition.
 *
 * - The builder's toolbar, the text view and the mode (builder or text).
 * - Errors where they belong: under the text at its line and column, in the
 *   row a JSON pointer leads to, or in #form-error.
 * - The live preview (POST /v1/segments:preview), debounced, in-flight
 *   requests aborted and stale answers dropped; and the kind, since a static
 *   segment has no condition to preview.
 */
import {
  form, builderEl, editingId, previewEl, formErrorEl, conditionSection, testBox, asArray, api,
} from "./builder_terms.js";
import { nextId, h } from "./builder_widgets.js";
import { onChanged, Row, root, builderView, buildTree } from "./builder_rows.js";

// -- views -------------------------------------------------------------------------------------

export const textArea = h("textarea", {
  id: "condition-text", class: "condition-text", rows: "5", spellcheck: "false",
  autocomplete: "off", autocapitalize: "off",
});
const textError = h("div", { id: "text-error", class: "text-error", role: "alert" });
const textHelpId = nextId("text-help");
textArea.setAttribute("aria-describedby", `text-error ${textHelpId}`);
const textView = h("div", { class: "text-view" },
  h("label", { for: "condition-text", text: "Condition text" }),
  textArea,
  textError,
  h("p", { class: "text-help muted", id: textHelpId },
    "For example: ",
    h("code", { text: "newsletter = true and country in [\"ES\", \"FR\"]" }), ", ",
    h("code", { text: "performed purchase at least 2 times in last 30 days" }), ", ",
    h("code", { text: "in segment \"VIP customers\"" }), "."));

export const builderBtn = h("button", { type: "button", class: "view-button", text: "Builder", "aria-pressed": "true" });
export const textBtn = h("button", { type: "button", class: "view-button", text: "Text", "aria-pressed": "false" });
const note = h("p", { id: "builder-note", class: "builder-note", role: "status", hidden: true });

builderEl.replaceChildren(
  h("div", { class: "builder-toolbar" },
    h("div", { class: "view-switch", role: "group", "aria-label": "Condition view" }, builderBtn, textBtn)),
  note,
  builderView,
  textView);

export let mode = "builder";

export function showNote(message) {
  note.textContent = message || "";
  note.hidden = !message;
}

export function setMode(next) {
  mode = next;
  builderView.hidden = next !== "builder";
  textView.hidden = next !== "text";
  builderBtn.setAttribute("aria-pressed", String(next === "builder"));
  textBtn.setAttribute("aria-pressed", String(next === "text"));
  builderEl.dataset.view = next;
}

export function clearTextError() {
  textError.replaceChildren();
  textArea.removeAttribute("aria-invalid");
}

/** `line`/`column` are 1-based, columns counted in characters (code points). */
function caretOffset(source, line, column) {
  const lines = source.split("\n");
  let offset = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length - 1); i += 1) offset += lines[i].length + 1;
  const current = lines[Math.min(line - 1, lines.length - 1)] || "";
  return offset + Array.from(current).slice(0, Math.max(0, column - 1)).join("").length;
}

/** Shows a text error; `moveCaret` puts the caret at its line and column. */
export function showTextError(error, moveCaret) {
  textError.replaceChildren(h("span", { text: error.message }));
  textArea.setAttribute("aria-invalid", "true");
  const d = error.details || {};
  if (typeof d.line === "number" && typeof d.column === "number") {
    const offset = caretOffset(textArea.value, d.line, d.column);
    const place = () => {
      textArea.focus();
      textArea.setSelectionRange(offset, offset);
    };
    if (moveCaret || document.activeElement !== textArea) {
      textArea.setSelectionRange(offset, offset);
      if (moveCaret) place();
    } else if (textArea.selectionStart !== offset || textArea.selectionEnd !== offset) {
      // Typing: don't move the caret under the user's fingers; offer to.
      textError.append(" ", h("button", {
        type: "button", class: "link-button", text: "Show me", onclick: place,
      }));
    }
  }
}

// -- errors ------------------------------------------------------------------------------------

let formErrorSource = null;

export function clearFormError(sources) {
  if (!formErrorSource || (sources && !sources.includes(formErrorSource))) return;
  formErrorEl.replaceChildren();
  formErrorSource = null;
}

export function showFormError(source, ...content) {
  formErrorEl.replaceChildren(...content);
  formErrorSource = source;
}

export function errorParagraph(error) {
  const p = h("p", { text: error.message || "Something went wrong" });
  if (error.code === "unauthorized" || (error.code && error.code === "http_401")) {
    p.append(" ", h("a", { href: "/ui/login", text: "Sign in again" }));
  }
  return p;
}

/** A condition error from the server, shown where it belongs. True when it was placed. */
export function placeConditionError(error, built, source) {
  const d = error.details || {};
  if (mode === "text") {
    if (typeof d.line === "number") {
      showTextError(error, source === "save");
      return true;
    }
    textError.replaceChildren(h("span", { text: error.message }));
    textArea.setAttribute("aria-invalid", "true");
    return true;
  }
  if (typeof d.path === "string" && built) {
    let best = null;
    for (const [pointer, owner] of built.owners) {
      if ((d.path === pointer || d.path.startsWith(`${pointer}/`)) && (!best || pointer.length > best[0].length)) {
        best = [pointer, owner];
      }
    }
    if (best) {
      // The pointer is the row's own place; a hint after it ("; did you mean …") stays.
      const message = String(error.message).replace(/ at (\/[^;\s]*)?(?=;|$)/, "");
      const [pointer, owner] = best;
      if (owner instanceof Row) {
        const tail = d.path.slice(pointer.length).replace(/^\/not(?=\/|$)/, "");
        owner.showError(message, owner.controlFor(tail));
      } else {
        owner.showError(message);
      }
      if (source === "save") owner instanceof Row ? owner.focus() : owner.el.querySelector("button").focus();
      return true;
    }
  }
  if (/inside `where`/.test(String(error.message))) {
    const rows = root.allRows().filter((row) => row.parts.where && !row.parts.where.isEmpty());
    for (const row of rows) row.showError(error.message, row.parts.where.focusable());
    if (rows.length) return true;
  }
  return false;
}

// -- live preview ------------------------------------------------------------------------------

let previewTimer = null;
let previewSeq = 0;
let previewAbort = null;

export function isStatic() {
  const checked = form.querySelector('input[name="kind"]:checked');
  return Boolean(checked && checked.value === "static");
}

/** Something in the condition changed: preview it soon (`now` skips the wait). */
export function changed(now) {
  if (isStatic()) return;
  clearTimeout(previewTimer);
  previewEl.classList.add("is-updating");
  previewEl.setAttribute("aria-busy", "true");
  previewTimer = setTimeout(runPreview, now === true ? 0 : 300);
}

builderView.addEventListener("input", () => changed());
builderView.addEventListener("change", (event) => {
  if (event.target === event.target.closest(".condition-row")?.querySelector(".field-select")) return;
  changed();
});

// The rows call it too (see builder_rows.js).
onChanged(changed);

async function runPreview() {
  previewSeq += 1;
  const seq = previewSeq;
  if (previewAbort) previewAbort.abort();
  previewAbort = new AbortController();
  const { signal } = previewAbort;
  if (isStatic()) return;

  let body;
  let built = null;
  if (mode === "text") {
    body = { condition: textArea.value, sample: 5 };
  } else {
    built = await buildTree(false);
    if (seq !== previewSeq) return;
    root.clearErrors();
    for (const p of built.problems) p.row.showError(p.message, p.control);
    body = { condition_tree: built.tree, sample: 5 };
  }
  if (editingId) body.segment_id = editingId;

  let res;
  try {
    res = await api("POST", "/v1/segments:preview", body, signal);
  } catch (err) {
    if (err && err.name === "AbortError") return;
    throw err;
  }
  if (seq !== previewSeq) return;
  previewEl.classList.remove("is-updating");
  previewEl.removeAttribute("aria-busy");

  if (res.ok) {
    if (mode === "text") clearTextError();
    clearFormError(["preview"]);
    renderPreview(res.data, built);
    return;
  }
  if (res.error.code === "invalid_condition" && placeConditionError(res.error, built, "preview")) {
    clearFormError(["preview"]);
  } else {
    showFormError("preview", errorParagraph(res.error));
  }
  renderPreviewError();
}

function renderPreview(data, built) {
  const size = Number(data.size) || 0;
  const parts = [
    h("p", { class: "preview-size" },
      h("strong", { "data-preview-size": "", text: Number(size).toLocaleString("en-US") }),
      size === 1 ? " contact matches" : " contacts match"),
  ];
  if (data.size_anonymous != null) {
    const anonymous = Number(data.size_anonymous) || 0;
    parts.push(h("p", { class: "preview-split muted" },
      h("span", { "data-preview-known": "", text: (size - anonymous).toLocaleString("en-US") }),
      " known · ",
      h("span", { "data-preview-anonymous": "", text: anonymous.toLocaleString("en-US") }),
      " anonymous"));
  }
  if (editingId && data.entering != null) {
    parts.push(h("p", { class: "preview-delta" },
      h("span", { "data-preview-entering": "", text: (Number(data.entering) || 0).toLocaleString("en-US") }),
      " would enter, ",
      h("span", { "data-preview-leaving": "", text: (Number(data.leaving) || 0).toLocaleString("en-US") }),
      " would leave"));
  }
  const sample = asArray(data.sample);
  const list = h("ul", { id: "preview-sample", class: "preview-sample", "aria-label": "Sample of matching contacts" });
  for (const contact of sample) {
    const email = contact.properties && contact.properties.email;
    list.append(h("li", {},
      h("a", { href: `/ui/contacts/${encodeURIComponent(contact.id)}`, text: contact.id }),
      email && email !== contact.id ? h("span", { class: "muted", text: ` ${email}` }) : null));
  }
  if (sample.length) parts.push(h("p", { class: "preview-sample-title muted", text: "For example:" }));
  parts.push(list);
  const warnings = asArray(data.warnings).filter((w) => w && typeof w.message === "string");
  if (warnings.length) {
    parts.push(h("div", { class: "preview-warnings", role: "status", "aria-label": "Warnings" },
      warnings.map((w) => h("p", { class: "preview-warning", "data-warning-path": String(w.path || "") },
        h("strong", { text: "Warning: " }), w.message))));
  }
  if (built && built.incomplete) {
    parts.push(h("p", { class: "preview-note muted",
      text: `${built.incomplete} unfinished condition${built.incomplete === 1 ? " is" : "s are"} not counted yet.` }));
  }
  parts.push(h("span", { class: "preview-status", "aria-hidden": "true", text: "Updating…" }));
  previewEl.replaceChildren(...parts);
}

function renderPreviewError() {
  previewEl.replaceChildren(
    h("p", { class: "preview-size muted", text: "Fix the condition to see how many contacts match." }),
    h("span", { class: "preview-status", "aria-hidden": "true", text: "Updating…" }));
}

// -- kind: dynamic or static -------------------------------------------------------------------

export function applyKind() {
  const isStaticKind = isStatic();
  if (conditionSection) conditionSection.hidden = isStaticKind;
  if (previewEl) previewEl.hidden = isStaticKind;
  if (testBox) {
    testBox.disabled = !isStaticKind;
    if (!isStaticKind) testBox.checked = false;
    // The checkbox and its hint share a .choice wrapper.
    const label = testBox.closest(".choice") || testBox.closest("label");
    if (label) label.hidden = !isStaticKind;
  }
  if (isStaticKind) {
    clearTimeout(previewTimer);
    previewSeq += 1;
    if (previewAbort) previewAbort.abort();
    previewEl.replaceChildren();
    previewEl.classList.remove("is-updating");
    previewEl.removeAttribute("aria-busy");
    clearFormError(["preview"]);
  } else {
    changed(true);
  }
}

for (const radio of form.querySelectorAll('input[name="kind"]')) {
  radio.addEventListener("change", applyKind);
}
