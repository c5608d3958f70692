/* Sift's condition builder: groups of rows, nested to any shape.
 *
 * A group is "Match all" (and) or "Match any" (or) of its items, each a row
 * or another group, and can be negated ("Not"). The builder's root is a
 * group that always matches all and cannot be removed; an event's `where`
 * is a group of property rows (builder_where.js). Groups know rows only
 * through what they are given (`makeRow`) and a few methods every row has:
 * `el`, `read()`, `notBox`, `clearError()`, `fieldSel` or `firstControl()`.
 */
import { nextId, h } from "./builder_widgets.js";

// The language allows 32 nodes from the root to a leaf; each group level
// takes up to two (the group and its `not`), a row two more and an event's
// `where` more again, so the builder stops offering "Add group" well before.
export const MAX_GROUP_LEVEL = 10;

export class Group {
  /**
   * opts: {makeRow(owner), level, combinator ("all"|"any"), root (no head),
   * onChanged(), addRowLabel, hasFilled(group) → bool (asks before removing)}
   */
  constructor(parent, opts) {
    this.parent = parent;
    this.opts = opts;
    this.level = opts.level || 0;
    this.items = [];
    this.id = nextId("group");
    this.list = h("div", { class: `condition-list ${opts.combinator === "any" ? "or-list" : "and-list"}` });
    this.errorSlot = h("div", { class: "row-error-slot" });
    if (opts.root) {
      this.el = this.list;
      this.combinator = "all";
      this.notBox = null;
      return;
    }
    this.combinatorSel = h("select", { class: "group-combinator", "aria-label": "Match" },
      h("option", { value: "all", text: "Match all" }),
      h("option", { value: "any", text: "Match any" }));
    this.combinatorSel.value = opts.combinator === "any" ? "any" : "all";
    this.notBox = h("input", { type: "checkbox", class: "not-box group-not", "aria-label": "Not (group)" });
    const titleId = nextId("group-title");
    this.title = h("span", { class: "group-title", id: titleId });
    this.addRowBtn = h("button", {
      type: "button", class: "add-condition", text: opts.addRowLabel || "Add condition",
      onclick: () => this.focusRow(this.addRow()),
    });
    this.addGroupBtn = h("button", {
      type: "button", class: "add-subgroup", text: "Add group",
      onclick: () => {
        const group = this.addGroup(this.combinator === "any" ? "all" : "any", 1);
        group.combinatorSel.focus();
        this.opts.onChanged();
      },
    });
    this.addGroupBtn.hidden = this.level + 1 > MAX_GROUP_LEVEL;
    this.el = h("div", {
      class: "condition-group", role: "group", "aria-labelledby": titleId, "data-group-id": this.id,
    },
      h("div", { class: "group-head" },
        h("label", { class: "not-toggle", title: "Negate this group" }, this.notBox,
          h("span", { text: " Not", "aria-hidden": "true" })),
        this.combinatorSel,
        this.title,
        h("button", {
          type: "button", class: "group-remove", text: "Remove group",
          onclick: () => this.askRemove(),
        })),
      this.list,
      h("div", { class: "group-actions" }, this.addRowBtn, this.addGroupBtn),
      this.errorSlot);
    this.el.__group = this;
    this.combinatorSel.addEventListener("change", () => {
      this.setCombinator(this.combinatorSel.value);
      this.opts.onChanged();
    });
    this.notBox.addEventListener("change", () => {
      this.el.classList.toggle("is-negated", this.notBox.checked);
      this.opts.onChanged();
    });
    this.setCombinator(this.combinatorSel.value);
  }

  setCombinator(value) {
    this.combinator = value === "any" ? "any" : "all";
    if (this.combinatorSel) this.combinatorSel.value = this.combinator;
    this.list.classList.toggle("or-list", this.combinator === "any");
    this.list.classList.toggle("and-list", this.combinator === "all");
    if (this.title) {
      this.title.textContent = this.combinator === "any"
        ? "At least one of these (OR group)"
        : "All of these (AND group)";
    }
  }

  setNegated(negate) {
    if (!this.notBox) return;
    this.notBox.checked = negate;
    this.el.classList.toggle("is-negated", negate);
  }

  focusRow(row) {
    const target = row.fieldSel || (row.firstControl && row.firstControl());
    if (target) target.focus();
    return row;
  }

  addRow() {
    const row = this.opts.makeRow(this);
    this.items.push(row);
    this.list.append(row.el);
    if (this.opts.afterChange) this.opts.afterChange();
    return row;
  }

  addGroup(combinator, rows) {
    const group = new Group(this, Object.assign({}, this.opts, {
      root: false, level: this.level + 1, combinator,
    }));
    for (let i = 0; i < rows; i += 1) group.addRow();
    this.items.push(group);
    this.list.append(group.el);
    if (this.opts.afterChange) this.opts.afterChange();
    return group;
  }

  /** The contract rows rely on: a row's "Remove". */
  removeRow(row) {
    this.removeItem(row);
  }

  removeItem(item) {
    const index = this.items.indexOf(item);
    if (index < 0) return;
    this.items.splice(index, 1);
    item.el.remove();
    if (this.opts.afterChange) this.opts.afterChange();
    const next = this.items[index] || this.items[index - 1];
    if (next instanceof Group) next.combinatorSel.focus();
    else if (next) this.focusRow(next);
    else if (this.addRowBtn) this.addRowBtn.focus();
    else if (this.opts.emptyFocus) this.opts.emptyFocus();
    this.opts.onChanged();
  }

  /** "Remove group": asks first when a row in it has something filled in. */
  askRemove() {
    const filled = this.allRows().filter((row) => row.read().state !== "blank").length;
    if (filled) {
      const what = filled === 1 ? "1 filled condition" : `${filled} filled conditions`;
      if (!window.confirm(`Remove this group and its ${what}?`)) return;
    }
    this.parent.removeItem(this);
  }

  clear() {
    this.items = [];
    this.list.replaceChildren();
    if (this.opts.afterChange) this.opts.afterChange();
  }

  allRows() {
    const rows = [];
    for (const item of this.items) {
      if (item instanceof Group) rows.push(...item.allRows());
      else rows.push(item);
    }
    return rows;
  }

  allGroups() {
    const groups = [];
    for (const item of this.items) {
      if (item instanceof Group) groups.push(item, ...item.allGroups());
    }
    return groups;
  }

  showError(message) {
    this.errorSlot.replaceChildren(h("div", { class: "row-error", role: "alert", text: message }));
    this.el.setAttribute("aria-invalid", "true");
  }

  clearError() {
    this.errorSlot.replaceChildren();
    if (this.el !== this.list) this.el.removeAttribute("aria-invalid");
    for (const item of this.items) item.clearError();
  }

  clearErrors() {
    this.clearError();
  }

  /**
   * The group's node from its rows' results (`resultOf(row)` → a read()
   * result with `node`), at JSON pointer `pointer`; pushes [pointer, owner]
   * pairs to `owners` and counts unfinished rows in `counter.incomplete`.
   * Null when nothing in it is complete. `ownersOf(row, pointer, result)`
   * may add owners inside a row (an event's where rows).
   */
  build(resultOf, pointer, owners, counter, ownersOf) {
    const children = [];
    const mine = [];
    for (const item of this.items) {
      const at = `${pointer}/${this.combinator}/${children.length}`;
      if (item instanceof Group) {
        const negate = item.notBox.checked;
        const node = item.build(resultOf, negate ? `${at}/not` : at, mine, counter, ownersOf);
        if (node) {
          mine.push([at, item]);
          children.push(negate ? { not: node } : node);
        }
        continue;
      }
      const result = resultOf(item);
      if (result.state === "ok") {
        mine.push([at, item]);
        const negate = item.notBox.checked;
        if (ownersOf) ownersOf(item, negate ? `${at}/not` : at, result, mine);
        children.push(negate ? { not: result.node } : result.node);
      } else if (result.state !== "blank") {
        counter.incomplete += 1;
      }
    }
    owners.push(...mine);
    if (!children.length && !this.opts.root) return null;
    return { [this.combinator]: children };
  }

  /** What the group holds, for undo: rows through `snapRow(row)`. */
  snapshot(snapRow) {
    return {
      combinator: this.combinator,
      not: Boolean(this.notBox && this.notBox.checked),
      items: this.items.map((item) => (item instanceof Group
        ? { group: item.snapshot(snapRow) }
        : { row: snapRow(item) })),
    };
  }

  /** The inverse of snapshot(): rows through `restoreRow(row, state)`. */
  restore(state, restoreRow) {
    this.clear();
    for (const item of (state && state.items) || []) {
      if (item.group) {
        const group = this.addGroup(item.group.combinator, 0);
        group.setNegated(item.group.not);
        group.restore(item.group, restoreRow);
      } else {
        restoreRow(this.addRow(), item.row);
      }
    }
  }

  /** Fills the group from a layout (see layoutOf): rows through `loadRow(row, spec)`. */
  load(layout, loadRow) {
    this.clear();
    for (const item of layout) {
      if (item.group) {
        const group = this.addGroup(item.combinator, 0);
        group.setNegated(item.negate);
        group.load(item.group, loadRow);
      } else {
        loadRow(this.addRow(), item);
      }
    }
  }
}
