/* Sift's condition builder: the condition rows, the root list (a group of
 * builder_groups.js that always matches all) and the conversions between
 * them and a condition tree.
 *
 * The rows' controls are the model: buildTree reads them into one JSON tree
 * (an event's where from its property rows, or read by the server when
 * typed as text) with the JSON pointer of each row, group and property row,
 * so that a server error can be shown in its row; loadLayout fills the rows
 * and groups from a tree that layoutOf accepted.
 */
import {
  CMP_OPS, COUNT_OPS, PSEUDO, opsFor, valueKind, printTree, resolveWhere, caseApplies,
} from "./builder_terms.js";
import { Group } from "./builder_groups.js";
import { whereEditor } from "./builder_where.js";
import {
  nextId, h, select, text, showRowError, clearRowError, eventTypeList, scalarEditor, betweenEditor, tagsEditor,
  durationEditor, segmentEditor, noValueEditor, describeChoice, fieldSelect, ensureFieldOption,
} from "./builder_widgets.js";

// The preview's `changed`, handed in by builder_preview.js: that module
// imports this one, and the modules import one way only.
let changed = () => {};
export function onChanged(fn) {
  changed = fn;
}

// -- rows ---------------------------------------------------------------------------

export class Row {
  constructor(owner) {
    this.owner = owner; // the root list or a Group
    this.id = nextId("row");
    this.choice = { kind: "blank" };
    this.parts = {};
    this.notBox = h("input", { type: "checkbox", class: "not-box" });
    this.fieldSel = fieldSelect();
    this.body = h("span", { class: "row-body" });
    this.extra = h("span", { class: "row-extra" });
    this.errorSlot = h("div", { class: "row-error-slot" });
    this.removeBtn = h("button", {
      type: "button", class: "row-remove", text: "Remove", title: "Remove this condition",
    });
    this.el = h("div", { class: "condition-row", "data-row-id": this.id },
      h("div", { class: "row-line" },
        h("label", { class: "not-toggle", title: "Negate this condition" }, this.notBox, " Not"),
        this.fieldSel,
        this.body,
        this.removeBtn),
      this.extra,
      this.errorSlot);
    this.el.__row = this;
    this.fieldSel.addEventListener("change", () => {
      this.setChoice(describeChoice(this.fieldSel.value), true);
      changed();
    });
    this.removeBtn.addEventListener("click", () => this.owner.removeRow(this));
    this.notBox.addEventListener("change", () => this.el.classList.toggle("is-negated", this.notBox.checked));
  }

  /** Rebuilds the controls after the field picker changed (keeps what fits). */
  setChoice(choice, keep) {
    const before = this.choice;
    const carried = keep ? this.carry() : null;
    this.choice = choice;
    this.el.dataset.kind = choice.kind;
    this.body.replaceChildren();
    this.extra.replaceChildren();
    this.parts = {};
    this.clearError();
    if (choice.kind === "field") this.buildField(choice, before, carried);
    else if (choice.kind === "event") this.buildEvent(false, carried);
    else if (choice.kind === "event_sum") this.buildEvent(true, carried);
    else if (choice.kind === "segment") this.buildSegment();
    this.extra.hidden = !this.extra.childElementCount;
  }

  carry() {
    const p = this.parts;
    return {
      op: p.op ? p.op.value : null,
      type: this.choice.type,
      strings: p.value ? p.value.carry() : [],
      eventType: p.eventType ? p.eventType.value : "",
      where: p.where ? p.where.snapshot() : null,
      inLast: p.inLast ? p.inLast.carry()[0] : "",
      ignoreCase: p.caseBox ? p.caseBox.checked : false,
    };
  }

  buildField(choice, before, carried) {
    const ops = opsFor(choice.type);
    const op = select("Operator", ops.filter((o) => !o[2]), null, { class: "op-select" });
    const sameType = carried && before.kind === "field" && before.type === choice.type;
    this.ensureOp(op, sameType && carried.op ? carried.op : ops[0][0]);
    this.parts.op = op;
    this.valueSlot = h("span", { class: "value-slot" });
    // "Ignore case": only for the string operators that can (caseApplies);
    // hidden, and not sent, with the others.
    const caseBox = h("input", { type: "checkbox", class: "case-box" });
    caseBox.checked = Boolean(sameType && carried.ignoreCase);
    this.caseToggle = h("label", { class: "case-toggle", title: "Match upper and lower case alike" },
      caseBox, " Ignore case");
    this.parts.caseBox = caseBox;
    this.body.append(op, this.valueSlot, this.caseToggle);
    this.setValueEditor(sameType ? carried.strings : []);
    op.addEventListener("change", () => {
      this.setValueEditor(this.parts.value ? this.parts.value.carry() : []);
      changed();
    });
  }

  /** Shows "Ignore case" only where the operator takes it. */
  updateCaseToggle() {
    if (!this.caseToggle || !this.parts.op) return;
    this.caseToggle.hidden = !caseApplies(this.choice.type, this.parts.op.value);
  }

  /** Makes `op` selectable even when it is one of the type's rarely used ones. */
  ensureOp(sel, op) {
    if ([...sel.options].some((o) => o.value === op)) {
      sel.value = op;
      return true;
    }
    const known = opsFor(this.choice.type).find((o) => o[0] === op);
    if (!known) return false;
    sel.append(h("option", { value: op, text: known[1] }));
    sel.value = op;
    return true;
  }

  setValueEditor(strings) {
    const op = this.parts.op.value;
    const type = this.choice.type;
    const kind = valueKind(op);
    let editor;
    if (kind === "none") editor = noValueEditor();
    else if (kind === "tags") editor = tagsEditor(type, changed);
    else if (kind === "between") editor = betweenEditor(type);
    else if (kind === "duration") editor = durationEditor("Value", false);
    else editor = scalarEditor(type === "string_list" ? "string" : type, "Value");
    if (strings && strings.length) editor.accept(strings);
    this.parts.value = editor;
    const children = [];
    if (editor.el) children.push(editor.el);
    if (op === "before_ago" || op === "after_ago") children.push(text("ago"));
    if (type === "datetime" && (kind === "scalar" || kind === "between")) {
      children.push(h("span", { class: "row-hint muted", text: "local time" }));
    }
    this.valueSlot.replaceChildren(...children);
    this.updateCaseToggle();
  }

  buildEvent(isSum, carried) {
    const eventType = h("input", {
      type: "text",
      class: "event-type",
      "aria-label": "Event",
      placeholder: "event type",
      list: eventTypeList(),
      autocomplete: "off",
      value: carried ? carried.eventType : "",
    });
    const where = whereEditor(eventType, () => changed());
    if (carried && carried.where) where.restore(carried.where);
    const inLast = durationEditor("In last", true);
    if (carried && carried.inLast) inLast.accept([carried.inLast]);
    this.parts.eventType = eventType;
    this.parts.where = where;
    this.parts.inLast = inLast;
    if (isSum) {
      const property = h("input", {
        type: "text", class: "property-input", "aria-label": "Property",
        placeholder: "property, e.g. amount", autocomplete: "off",
      });
      const op = select("Operator", CMP_OPS, "gte", { class: "op-select" });
      const value = scalarEditor("number", "Value");
      this.parts.property = property;
      this.parts.op = op;
      this.parts.value = value;
      this.body.append(eventType, text("."), property, op, value.el);
    } else {
      const op = select("Operator", COUNT_OPS, "gte", { class: "op-select count-op" });
      const count = h("input", {
        type: "number", min: "0", step: "1", inputmode: "numeric", class: "count-input",
        "aria-label": "Value", value: "1",
      });
      this.parts.op = op;
      this.parts.count = count;
      this.body.append(eventType, op, count, text("times"));
    }
    this.extra.append(
      h("span", { class: "extra-part" }, text("in last", "row-word"), inLast.el),
      h("span", { class: "extra-part extra-where" }, text("where", "row-word"), where.el),
    );
  }

  buildSegment() {
    const editor = segmentEditor();
    this.parts.value = editor;
    this.body.append(editor.el);
  }

  /** Fills the row from one predicate node of a tree (already known to fit). */
  load(node, negate) {
    this.notBox.checked = negate;
    this.el.classList.toggle("is-negated", negate);
    if ("field" in node) {
      ensureFieldOption(this.fieldSel, node.field);
      this.fieldSel.value = node.field;
      this.setChoice(describeChoice(node.field), false);
      this.ensureOp(this.parts.op, node.op);
      this.setValueEditor([]);
      if (node.value !== undefined) this.parts.value.write(node.value);
      this.parts.caseBox.checked = node.ignore_case === true;
    } else if ("event" in node || "event_sum" in node) {
      const isSum = "event_sum" in node;
      this.fieldSel.value = isSum ? PSEUDO.event_sum : PSEUDO.event;
      this.setChoice({ kind: isSum ? "event_sum" : "event" }, false);
      this.parts.eventType.value = isSum ? node.event_sum : node.event;
      if (node.where) this.parts.where.load(node.where);
      if (node.in_last) this.parts.inLast.write(node.in_last);
      if (isSum) {
        this.parts.property.value = node.property;
        this.parts.op.value = node.op;
        this.parts.value.write(node.value);
      } else if (node.count) {
        this.parts.op.value = node.count.op;
        this.parts.count.value = String(node.count.value);
      }
    } else if ("in_segment" in node) {
      this.fieldSel.value = PSEUDO.segment;
      this.setChoice({ kind: "segment" }, false);
      this.parts.value.write(node.in_segment);
    }
  }

  /**
   * The row's predicate: {state: "blank"} (no field chosen), "empty" (something
   * missing), "bad" (a value that can't be sent) or "ok" with `node`,
   * `whereSource` when the server still has to read a where-clause typed as
   * text, and `whereOwners` ([pointer inside the where, property row]).
   */
  read() {
    const c = this.choice;
    const p = this.parts;
    if (c.kind === "blank") return { state: "blank" };
    let node;
    let whereSource = null;
    let whereOwners = null;
    if (c.kind === "field") {
      const value = p.value.read();
      if (value.state !== "ok") return value;
      node = { field: c.field, op: p.op.value };
      if (value.value !== undefined) node.value = value.value;
      if (p.caseBox.checked && caseApplies(c.type, node.op)) node.ignore_case = true;
    } else if (c.kind === "segment") {
      const value = p.value.read();
      if (value.state !== "ok") return value;
      node = { in_segment: value.value };
    } else {
      const eventType = p.eventType.value.trim();
      if (eventType === "") return { state: "empty", control: p.eventType, message: "Choose an event type" };
      const inLast = p.inLast.read();
      if (inLast.state === "bad") return inLast;
      if (c.kind === "event") {
        node = { event: eventType };
        const raw = p.count.value.trim();
        if (raw === "" || !/^\d+$/.test(raw)) {
          if (raw === "" && !(p.count.validity && p.count.validity.badInput)) {
            return { state: "empty", control: p.count, message: "Enter how many times" };
          }
          return { state: "bad", control: p.count, message: "Enter a whole number of times" };
        }
        const n = Number(raw);
        if (!(p.op.value === "gte" && n === 1)) node.count = { op: p.op.value, value: n };
      } else {
        const property = p.property.value.trim();
        if (property === "") return { state: "empty", control: p.property, message: "Enter the property to add up" };
        const value = p.value.read();
        if (value.state !== "ok") return value;
        node = { event_sum: eventType, property, op: p.op.value, value: value.value };
      }
      if (inLast.state === "ok") node.in_last = inLast.value;
      const where = p.where.read();
      if (where.state === "bad" || where.state === "empty") {
        return { state: where.state, control: where.control, message: where.message };
      }
      if (where.state === "text") whereSource = where.source;
      if (where.state === "ok") {
        node.where = where.tree;
        whereOwners = where.owners;
      }
    }
    return { state: "ok", node, whereSource, whereOwners };
  }

  /** The control a JSON pointer tail (after the row's own node) points at. */
  controlFor(tail) {
    const p = this.parts;
    const first = tail.split("/")[1] || "";
    const rest = tail.slice(first.length + 1);
    switch (first) {
      case "field": return this.fieldSel;
      case "op": return p.op || null;
      case "value": return p.value ? p.value.controlFor(rest) : p.count || null;
      case "count": return p.count || null;
      case "event": case "event_sum": return p.eventType || null;
      case "property": return p.property || null;
      case "where": return p.where ? p.where.focusable() : null;
      case "in_last": return p.inLast ? p.inLast.amount : null;
      case "in_segment": return p.value ? p.value.focusable : null;
      case "ignore_case": return p.caseBox || null;
      default: return null;
    }
  }

  showError(message, control) {
    showRowError(this, message, control);
  }

  clearError() {
    clearRowError(this);
  }

  firstControl() {
    if (this.choice.kind === "blank") return this.fieldSel;
    const p = this.parts;
    if (p.eventType) return p.eventType;
    return (p.value && p.value.focusable) || p.op || this.fieldSel;
  }

  focus() {
    (this.invalidControl || this.fieldSel).focus();
  }
}

// -- the root list -----------------------------------------------------------------------

// The root group: always "all of these", never removed; nested groups
// (builder_groups.js) hold rows and groups of their own.
export const root = new Group(null, {
  root: true,
  level: 0,
  combinator: "all",
  makeRow: (owner) => new Row(owner),
  onChanged: () => changed(),
  afterChange: () => updateEmptyState(),
  emptyFocus: () => addConditionBtn.focus(),
});

// -- the builder's chrome ---------------------------------------------------------------------

export const addConditionBtn = h("button", { type: "button", class: "add-condition", text: "Add condition" });
const addGroupBtn = h("button", { type: "button", class: "add-group", text: "Add OR group" });
const emptyHint = h("p", { class: "builder-empty muted", text: "No conditions yet: every contact matches. Add a condition to narrow it down." });
export const builderView = h("div", { class: "builder-view" },
  h("p", { class: "builder-lead", text: "Contacts must match all of these:" }),
  root.list,
  emptyHint,
  h("div", { class: "builder-actions" }, addConditionBtn, addGroupBtn));

export function updateEmptyState() {
  emptyHint.hidden = root.items.length > 0;
}

addConditionBtn.addEventListener("click", () => {
  root.addRow().fieldSel.focus();
});
addGroupBtn.addEventListener("click", () => {
  root.addGroup("any", 2).items[0].fieldSel.focus();
});

// -- tree <-> rows ------------------------------------------------------------------------

export function loadLayout(layout) {
  root.load(layout, (row, [node, negate]) => row.load(node, negate));
  updateEmptyState();
}

/**
 * Reads every row. `forSave` also reports rows with something missing. Returns
 * {tree, owners: [[pointer, Row|Group|WhereRow]], problems: [{row, message, control}],
 * incomplete: n}.
 */
export async function buildTree(forSave) {
  const results = new Map();
  const problems = [];
  for (const row of root.allRows()) {
    const result = row.read();
    results.set(row, result);
    if (result.state === "bad") problems.push({ row, message: result.message, control: result.control });
    if (result.state === "empty" && forSave) {
      problems.push({
        row,
        message: result.message ? `${result.message}, or remove this condition` : "Fill in a value, or remove this condition",
        control: result.control || row.firstControl(),
      });
    }
  }
  const pending = [];
  for (const [row, result] of results) {
    if (result.state !== "ok" || !result.whereSource) continue;
    pending.push(resolveWhere(result.whereSource).then((where) => {
      if (where.tree) {
        result.node = Object.assign({}, result.node, { where: where.tree });
      } else {
        result.state = "bad";
        problems.push({ row, message: where.message, control: row.parts.where.focusable() });
      }
    }));
  }
  await Promise.all(pending);

  const owners = [];
  const counter = { incomplete: 0 };
  const tree = root.build((row) => results.get(row), "", owners, counter, whereOwnersOf);
  return { tree, owners, problems, incomplete: counter.incomplete };
}

/** An event row's property rows own the pointers inside its `where`. */
function whereOwnersOf(row, pointer, result, owners) {
  for (const [inner, owner] of result.whereOwners || []) owners.push([`${pointer}/where${inner}`, owner]);
}

/** The text of the builder's rows right now (where-clauses typed as text as typed). */
export function builderText() {
  let left = 0;
  const results = new Map();
  for (const row of root.allRows()) {
    const result = row.read();
    if (result.state === "ok" && result.whereSource) {
      result.node = Object.assign({}, result.node, { where: { __text: result.whereSource } });
    }
    results.set(row, result);
  }
  const counter = { incomplete: 0 };
  const tree = root.build((row) => results.get(row), "", [], counter);
  left = counter.incomplete;
  return { text: printTree(tree, "contact"), left };
}
