/* Sift's condition builder: an event's `where` made of rows.
 *
 * Each row tests one property of the event (picked from the properties the
 * event type's events had), with the operators of its kind of value and a
 * value suggested from the most frequent ones. The rows sit in groups like
 * the builder's own (builder_groups.js). "Edit as text" swaps them for the
 * where-clause as text (read by the server), for those who prefer typing.
 */
import {
  opsFor, valueKind, printTree, Unfit, layoutOfGroup, resolveWhere,
} from "./builder_terms.js";
import {
  nextId, h, select, showRowError, clearRowError, scalarEditor, betweenEditor, tagsEditor, durationEditor, noValueEditor,
} from "./builder_widgets.js";
import { Group } from "./builder_groups.js";
import {
  propertiesOf, propertyList, onCatalog, suggestValues, propertyValuesUrl,
} from "./builder_suggest.js";

// -- one property row ------------------------------------------------------------

export class WhereRow {
  constructor(owner, eventTypeOf, onChanged) {
    this.owner = owner;
    this.eventTypeOf = eventTypeOf;
    this.onChanged = onChanged;
    this.id = nextId("where-row");
    this.kind = "string";
    this.notBox = h("input", { type: "checkbox", class: "not-box", "aria-label": "Not (property)" });
    this.propInput = h("input", {
      type: "text", class: "where-property", "aria-label": "Event property",
      placeholder: "property", autocomplete: "off", spellcheck: "false",
    });
    this.opSlot = h("span", { class: "where-op-slot" });
    this.valueSlot = h("span", { class: "value-slot" });
    this.errorSlot = h("div", { class: "row-error-slot" });
    this.removeBtn = h("button", {
      type: "button", class: "row-remove", text: "×", "aria-label": "Remove property condition",
      title: "Remove this property condition",
    });
    this.el = h("div", { class: "where-row", "data-row-id": this.id },
      h("div", { class: "row-line" },
        h("label", { class: "not-toggle", title: "Negate this property condition" }, this.notBox,
          h("span", { text: " Not", "aria-hidden": "true" })),
        this.propInput, this.opSlot, this.valueSlot, this.removeBtn),
      this.errorSlot);
    this.el.__row = this;
    this.propInput.addEventListener("focus", () => this.refreshList());
    this.propInput.addEventListener("change", () => this.retype());
    this.propInput.addEventListener("input", () => {
      // A name picked from the list is complete: retype at once.
      if (propertiesOf(this.eventTypeOf()).some((p) => p.name === this.propInput.value)) this.retype();
    });
    this.removeBtn.addEventListener("click", () => this.owner.removeRow(this));
    this.notBox.addEventListener("change", () => this.el.classList.toggle("is-negated", this.notBox.checked));
    this.buildOps("eq", []);
  }

  refreshList() {
    const type = this.eventTypeOf();
    const list = type ? propertyList(type) : null;
    if (list) this.propInput.setAttribute("list", list);
  }

  kindOf(name) {
    const found = propertiesOf(this.eventTypeOf()).find((p) => p.name === name);
    return found ? found.type : "string";
  }

  /** The property changed: its kind may bring other operators. */
  retype() {
    const kind = this.kindOf(this.propInput.value.trim());
    if (kind === this.kind) return;
    this.kind = kind;
    this.buildOps(this.opSel.value, this.value ? this.value.carry() : []);
  }

  buildOps(op, strings) {
    const ops = opsFor(this.kind);
    this.opSel = select("Property operator", ops.filter((o) => !o[2]), null, { class: "op-select" });
    if (!this.ensureOp(op)) this.opSel.value = ops[0][0];
    this.opSel.addEventListener("change", () => {
      this.setValueEditor(this.value ? this.value.carry() : []);
      this.onChanged();
    });
    this.opSlot.replaceChildren(this.opSel);
    this.setValueEditor(strings);
  }

  ensureOp(op) {
    if ([...this.opSel.options].some((o) => o.value === op)) {
      this.opSel.value = op;
      return true;
    }
    const known = opsFor(this.kind).find((o) => o[0] === op);
    if (!known) return false;
    this.opSel.append(h("option", { value: op, text: known[1] }));
    this.opSel.value = op;
    return true;
  }

  setValueEditor(strings) {
    const kind = valueKind(this.opSel.value);
    const type = this.kind === "string_list" ? "string" : this.kind;
    let editor;
    if (kind === "none") editor = noValueEditor();
    else if (kind === "tags") editor = tagsEditor(type, this.onChanged);
    else if (kind === "between") editor = betweenEditor(type);
    else if (kind === "duration") editor = durationEditor("Property value", false);
    else editor = scalarEditor(type, "Property value");
    if (strings && strings.length) editor.accept(strings);
    this.value = editor;
    this.valueSlot.replaceChildren(...(editor.el ? [editor.el] : []));
    const input = editor.focusable;
    if (type === "string" && input instanceof HTMLInputElement && input.type === "text") {
      suggestValues(input, propertyValuesUrl(this.eventTypeOf, () => this.propInput.value.trim()), "events");
    }
  }

  /** Like a condition row's read(): blank, empty, bad or ok with `node`. */
  read() {
    const name = this.propInput.value.trim();
    const value = this.value.read();
    if (name === "") {
      if (value.state === "empty" || valueKind(this.opSel.value) === "none") return { state: "blank" };
      return { state: "empty", control: this.propInput, message: "Choose the property to test" };
    }
    if (value.state !== "ok") {
      return value.state === "empty"
        ? { state: "empty", control: this.value.focusable, message: `Enter a value for ${name}` }
        : value;
    }
    const node = { field: name, op: this.opSel.value };
    if (value.value !== undefined) node.value = value.value;
    return { state: "ok", node };
  }

  load(node, negate) {
    this.notBox.checked = negate;
    this.el.classList.toggle("is-negated", negate);
    this.propInput.value = node.field;
    this.kind = kindForNode(node, propertiesOf(this.eventTypeOf()));
    this.buildOps(node.op, []);
    this.setValueEditor([]);
    if (node.value !== undefined) this.value.write(node.value);
  }

  snapshot() {
    return {
      not: this.notBox.checked, property: this.propInput.value, kind: this.kind,
      op: this.opSel.value, strings: this.value.carry(),
    };
  }

  restore(s) {
    this.notBox.checked = Boolean(s.not);
    this.el.classList.toggle("is-negated", this.notBox.checked);
    this.propInput.value = s.property || "";
    this.kind = s.kind || "string";
    this.buildOps(s.op, s.strings || []);
  }

  controlFor(tail) {
    const first = tail.split("/")[1] || "";
    if (first === "field") return this.propInput;
    if (first === "op") return this.opSel;
    if (first === "value") return this.value.controlFor(tail.slice(first.length + 1)) || this.opSel;
    return null;
  }

  showError(message, control) {
    showRowError(this, message, control);
  }

  clearError() {
    clearRowError(this);
  }

  firstControl() {
    return this.propInput;
  }

  focus() {
    (this.invalidControl || this.propInput).focus();
  }
}

// -- the where of one event row ---------------------------------------------------

const DATE_TEXT = /^\d{4}-\d{2}-\d{2}$/;
const DATETIME_TEXT = /^\d{4}-\d{2}-\d{2}T/;

/**
 * The kind of value a loaded property test reads: the catalog's, else what
 * its value is (a property no event has shown since the server started),
 * so that what is sent again keeps the value's type. Throws Unfit when no
 * kind offers the operator.
 */
function kindForNode(node, known) {
  const found = known.find((p) => p.name === node.field);
  let sample = Array.isArray(node.value) ? node.value[0] : node.value;
  if (node.op === "contains" || node.op === "not_contains") sample = sample === undefined ? "" : String(sample);
  let guess = "string";
  if (typeof sample === "number") guess = "number";
  else if (typeof sample === "boolean") guess = "boolean";
  else if (typeof sample === "string" && DATE_TEXT.test(sample)) guess = "date";
  else if (typeof sample === "string" && DATETIME_TEXT.test(sample)) guess = "datetime";
  else if (["in_last", "before_ago", "after_ago"].includes(node.op)) guess = "datetime";
  const kinds = [...new Set([found ? found.type : guess, guess, "string"])];
  const kind = kinds.find((k) => opsFor(k).some((o) => o[0] === node.op));
  if (!kind) throw new Unfit(`the builder has no operator “${node.op}” for the property “${node.field}”`);
  return kind;
}

function whereRowSpec(node) {
  const isProp = (n) => n && typeof n === "object" && typeof n.field === "string" && typeof n.op === "string";
  const spec = (n, negate) => {
    kindForNode(n, []); // throws Unfit for an operator no kind has
    return [n, negate];
  };
  if (isProp(node)) return spec(node, false);
  if (node && typeof node === "object" && isProp(node.not)) return spec(node.not, true);
  throw new Unfit("it holds something property rows can't show");
}

/**
 * The where editor of an event row: property rows by default, the text on
 * "Edit as text". `eventType` is the row's event type input.
 */
export function whereEditor(eventType, onChanged) {
  const eventTypeOf = () => eventType.value.trim();
  const group = new Group(null, {
    root: true, level: 1, combinator: "all",
    makeRow: (owner) => new WhereRow(owner, eventTypeOf, onChanged),
    addRowLabel: "Add property condition",
    onChanged,
    afterChange: () => sync(),
    emptyFocus: () => addBtn.focus(),
  });
  const addBtn = h("button", { type: "button", class: "add-where", text: "Add property condition" });
  const addGroupBtn = h("button", { type: "button", class: "add-where-group", text: "Add group" });
  const textInput = h("input", {
    type: "text", class: "where-input", "aria-label": "Where", placeholder: "e.g. amount > 50",
    autocomplete: "off", spellcheck: "false", hidden: true,
  });
  const toggle = h("button", { type: "button", class: "link-button where-toggle", text: "Edit as text" });
  const note = h("span", { class: "where-note muted", role: "status" });
  const actions = h("span", { class: "where-actions" }, addBtn, addGroupBtn);
  const el = h("div", { class: "where-editor" }, group.list, actions, textInput, toggle, note);
  let mode = "rows";

  function sync() {
    el.classList.toggle("is-empty", group.items.length === 0);
  }
  sync();
  addBtn.addEventListener("click", () => {
    group.addRow().propInput.focus();
  });
  addGroupBtn.addEventListener("click", () => {
    const sub = group.addGroup("any", 2);
    sub.combinatorSel.focus();
    onChanged();
  });
  // Properties arrive after the rows may be drawn: give them their kinds.
  onCatalog(() => {
    for (const row of group.allRows()) if (row.read().state === "blank") row.retype();
  });

  function setMode(next) {
    mode = next;
    group.list.hidden = next !== "rows";
    actions.hidden = next !== "rows";
    textInput.hidden = next !== "text";
    toggle.textContent = next === "rows" ? "Edit as text" : "Edit as rows";
  }

  function treeOfRows() {
    const owners = [];
    const counter = { incomplete: 0 };
    const results = new Map();
    for (const row of group.allRows()) results.set(row, row.read());
    const tree = group.build((row) => results.get(row), "", owners, counter);
    return { tree, owners, results };
  }

  toggle.addEventListener("click", async () => {
    note.textContent = "";
    if (mode === "rows") {
      const { tree } = treeOfRows();
      textInput.value = tree.all.length ? printTree(tree, "event") : "";
      setMode("text");
      textInput.focus();
      return;
    }
    const source = textInput.value.trim();
    if (source === "") {
      group.clear();
      setMode("rows");
      addBtn.focus();
      onChanged();
      return;
    }
    const where = await resolveWhere(source);
    if (!where.tree) {
      note.textContent = where.message;
      return;
    }
    try {
      loadTree(where.tree);
    } catch (err) {
      if (!(err instanceof Unfit)) throw err;
      note.textContent = `Rows can't show this: ${err.message}. Keep it as text.`;
      return;
    }
    setMode("rows");
    toggle.focus();
    onChanged();
  });

  function loadTree(tree) {
    const layout = layoutOfGroup(tree, "all", whereRowSpec);
    group.load(layout, (row, [node, negate]) => row.load(node, negate));
  }

  return {
    el,
    group,
    /** none, ok {tree, owners: [[pointer, row]]}, text {source}, empty or bad. */
    read() {
      if (mode === "text") {
        const source = textInput.value.trim();
        return source === "" ? { state: "none" } : { state: "text", source };
      }
      const { tree, owners, results } = treeOfRows();
      for (const [row, result] of results) {
        if (result.state === "bad") return Object.assign({}, result, { row });
        if (result.state === "empty") return Object.assign({}, result, { row });
      }
      if (!tree.all.length) return { state: "none" };
      return { state: "ok", tree: tree.all.length === 1 ? tree.all[0] : tree, owners: tree.all.length === 1 ? unwrap(owners) : owners };
    },
    load(tree) {
      note.textContent = "";
      try {
        loadTree(tree);
        setMode("rows");
      } catch (err) {
        if (!(err instanceof Unfit)) throw err;
        group.clear();
        textInput.value = printTree(tree, "event");
        setMode("text");
      }
    },
    isEmpty() {
      return mode === "text" ? textInput.value.trim() === "" : group.allRows().every((r) => r.read().state === "blank");
    },
    focusable() {
      if (mode === "text") return textInput;
      const rows = group.allRows();
      return rows.length ? rows[0].propInput : addBtn;
    },
    snapshot() {
      return { mode, text: textInput.value, group: group.snapshot((row) => row.snapshot()) };
    },
    restore(s) {
      if (!s) return;
      textInput.value = s.text || "";
      group.restore(s.group, (row, rs) => row.restore(rs));
      setMode(s.mode === "text" ? "text" : "rows");
    },
  };
}

/** A lone child is sent without its group: its pointers lose the `/all/0`. */
function unwrap(owners) {
  return owners.map(([pointer, owner]) => [pointer.replace(/^\/all\/0/, ""), owner]);
}
