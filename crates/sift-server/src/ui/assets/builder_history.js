/* Sift's condition builder: undo and redo.
 *
 * After every change to the rows and groups (a control changed, a button
 * pressed, typing paused) the whole builder is kept as a snapshot; "Undo"
 * and "Redo" (and Ctrl+Z, Ctrl+Shift+Z, Ctrl+Y while the focus is in the
 * builder but not in a text box, which has its own undo) rebuild the rows
 * from one. Typing in one box makes one step, not one per key.
 */
import { h, describeChoice, ensureFieldOption } from "./builder_widgets.js";
import { PSEUDO } from "./builder_terms.js";

/** Steps kept (docs/ui.md promises this many). */
const STEPS = 100;
// Keys typed within this long of each other in one box make one step.
const TYPING_MS = 1000;

/** A condition row as plain data (what its controls hold, finished or not). */
export function rowSnapshot(row) {
  const p = row.parts;
  const carried = row.carry();
  return {
    choice: row.fieldSel.value,
    not: row.notBox.checked,
    op: carried.op,
    strings: carried.strings,
    ignoreCase: Boolean(carried.ignoreCase),
    eventType: carried.eventType,
    inLast: carried.inLast,
    where: carried.where,
    count: p.count ? p.count.value : null,
    property: p.property ? p.property.value : null,
    segment: row.choice.kind === "segment" && p.value ? p.value.focusable.value : null,
  };
}

/** Fills a fresh row from rowSnapshot(). */
export function restoreRow(row, s) {
  row.notBox.checked = Boolean(s.not);
  row.el.classList.toggle("is-negated", row.notBox.checked);
  if (!s.choice) return;
  if (!Object.values(PSEUDO).includes(s.choice)) ensureFieldOption(row.fieldSel, s.choice);
  row.fieldSel.value = s.choice;
  row.setChoice(describeChoice(s.choice), false);
  const p = row.parts;
  const kind = row.choice.kind;
  if (kind === "field") {
    if (s.op) row.ensureOp(p.op, s.op);
    row.setValueEditor(s.strings || []);
    if (p.caseBox) p.caseBox.checked = Boolean(s.ignoreCase);
    row.updateCaseToggle();
  } else if (kind === "segment") {
    if (s.segment) p.value.write(s.segment);
  } else if (kind === "event" || kind === "event_sum") {
    p.eventType.value = s.eventType || "";
    if (s.op) p.op.value = s.op;
    if (s.inLast) p.inLast.accept([s.inLast]);
    if (s.where) p.where.restore(s.where);
    if (kind === "event" && s.count != null) p.count.value = s.count;
    if (kind === "event_sum") {
      p.property.value = s.property || "";
      p.value.accept(s.strings || []);
    }
  }
}

/**
 * Undo and redo for the rows of `group` inside `container`; the buttons go
 * into `mount`. `afterRestore()` runs after a step is put back (a preview,
 * the empty state). Answers {record(), reset(), snapshot()}.
 */
export function createHistory({ group, container, mount, afterRestore }) {
  const undoBtn = h("button", { type: "button", class: "undo-button", text: "Undo", title: "Undo (Ctrl+Z)", disabled: true });
  const redoBtn = h("button", { type: "button", class: "redo-button", text: "Redo", title: "Redo (Ctrl+Shift+Z)", disabled: true });
  mount.append(h("span", { class: "builder-history", role: "group", "aria-label": "Edit history" }, undoBtn, redoBtn));

  const past = [];
  const future = [];
  let current = null;
  let restoring = false;
  let typingIn = null;
  let typedAt = 0;

  const snapshot = () => JSON.stringify(group.snapshot(rowSnapshot));

  function update() {
    undoBtn.disabled = past.length === 0;
    redoBtn.disabled = future.length === 0;
  }

  /** Keeps the builder as it is now as a step (nothing if unchanged). */
  function record(typingTarget) {
    if (restoring) return;
    const now = snapshot();
    if (now === current) return;
    const sameTyping = typingTarget && typingTarget === typingIn && Date.now() - typedAt < TYPING_MS;
    if (!sameTyping && current !== null) {
      past.push(current);
      if (past.length > STEPS) past.shift();
    }
    current = now;
    future.length = 0;
    typingIn = typingTarget || null;
    typedAt = Date.now();
    update();
  }

  function put(state) {
    restoring = true;
    const hadFocus = container.contains(document.activeElement);
    try {
      group.restore(JSON.parse(state), restoreRow);
    } finally {
      restoring = false;
    }
    current = state;
    typingIn = null;
    update();
    if (afterRestore) afterRestore();
    if (hadFocus && !container.contains(document.activeElement)) {
      (undoBtn.disabled ? redoBtn : undoBtn).focus();
    }
  }

  function undo() {
    if (!past.length) return;
    future.push(current);
    put(past.pop());
  }

  function redo() {
    if (!future.length) return;
    past.push(current);
    put(future.pop());
  }

  undoBtn.addEventListener("click", undo);
  redoBtn.addEventListener("click", redo);

  // After the builder's own handlers have run.
  const later = (fn) => setTimeout(fn, 0);
  container.addEventListener("input", (event) => later(() => record(event.target)));
  container.addEventListener("change", () => later(() => record(null)));
  container.addEventListener("click", (event) => {
    if (event.target.closest("button") && !event.target.closest(".builder-history")) later(() => record(null));
  });
  container.addEventListener("keydown", (event) => {
    if (!(event.ctrlKey || event.metaKey) || event.altKey) return;
    const key = event.key.toLowerCase();
    if (key !== "z" && key !== "y") return;
    const target = event.target;
    const ownUndo = target instanceof HTMLTextAreaElement
      || (target instanceof HTMLInputElement && !["checkbox", "radio", "button", "submit"].includes(target.type));
    if (ownUndo) return;
    event.preventDefault();
    if (key === "y" || event.shiftKey) redo();
    else undo();
  });

  return {
    record,
    /** Forgets every step: the builder as it is now is where undo stops. */
    reset() {
      past.length = 0;
      future.length = 0;
      current = snapshot();
      typingIn = null;
      update();
    },
    snapshot,
  };
}
