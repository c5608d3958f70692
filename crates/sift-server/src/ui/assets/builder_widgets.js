/* Sift's segment form: the small widgets the condition rows are made of.
 *
 * DOM helpers (`h`, ids), the value editors (one per kind of value, all alike
 * so that a row can swap them when the operator changes and keep what was
 * typed) and the field picker.
 */
import {
  builderEl, FIELDS, SEGMENTS, EVENT_TYPES, SYSTEM_FIELDS, asArray, fieldLabel, fieldType, UNITS,
  PSEUDO, localToUtc, utcToLocal, parseDuration,
} from "./builder_terms.js";

// -- small DOM helpers ----------------------------------------------------------

let uid = 0;
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/**
 * Shows `message` in a row's error slot, marking `control` (else the row's
 * first control) invalid and described by it. Rows of conditions and rows
 * of a where share it: each has `el`, `errorSlot` and `firstControl()`.
 */
export function showRowError(row, message, control) {
  clearRowError(row);
  const id = nextId("row-error");
  row.errorSlot.append(h("div", { class: "row-error", role: "alert", id, text: message }));
  row.el.setAttribute("aria-invalid", "true");
  const target = control || row.firstControl();
  if (target) {
    target.setAttribute("aria-invalid", "true");
    target.setAttribute("aria-describedby", id);
    row.invalidControl = target;
  }
}

/** Undoes showRowError. */
export function clearRowError(row) {
  row.errorSlot.replaceChildren();
  row.el.removeAttribute("aria-invalid");
  if (row.invalidControl) {
    row.invalidControl.removeAttribute("aria-invalid");
    row.invalidControl.removeAttribute("aria-describedby");
    row.invalidControl = null;
  }
}

/** `h("input", {type: "text", "aria-label": "Value"}, ...children)`. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "value" || key === "checked" || key === "selected") el[key] = value;
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child);
  }
  return el;
}

export function select(label, options, value, attrs) {
  const el = h("select", Object.assign({ "aria-label": label }, attrs || {}));
  for (const [optValue, optLabel] of options) el.append(h("option", { value: optValue, text: optLabel }));
  if (value != null) el.value = value;
  return el;
}

export function text(content, cls) {
  return h("span", { class: cls || "row-word", text: content });
}

// Inputs inside the builder must not submit the form on Enter.
builderEl.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && event.target instanceof HTMLInputElement
    && event.target.type !== "checkbox" && event.target.type !== "radio") {
    event.preventDefault();
  }
});

let datalistId = null;
export function eventTypeList() {
  if (datalistId) return datalistId;
  datalistId = nextId("event-types");
  const list = h("datalist", { id: datalistId });
  for (const type of EVENT_TYPES) list.append(h("option", { value: type }));
  builderEl.append(list);
  return datalistId;
}

// -- value editors ----------------------------------------------------------------
//
// Each editor: { el, read() → {state: "ok"|"empty"|"bad", value?, message?, control?},
// write(value), carry() → raw strings kept when the operator changes, accept(strings),
// focusable, controlFor(pointerTail) }.

export function scalarEditor(type, label) {
  if (type === "boolean") {
    const sel = select(label, [["true", "true"], ["false", "false"]], "true", { class: "value-input" });
    return {
      el: sel,
      focusable: sel,
      read: () => ({ state: "ok", value: sel.value === "true" }),
      write: (value) => { sel.value = String(value) === "false" ? "false" : "true"; },
      carry: () => [sel.value],
      accept: (strings) => { if (strings[0] === "false" || strings[0] === "true") sel.value = strings[0]; },
      controlFor: () => sel,
    };
  }
  const inputType = { number: "number", date: "date", datetime: "datetime-local" }[type] || "text";
  const input = h("input", {
    type: inputType,
    class: `value-input value-${inputType}`,
    "aria-label": label,
    step: inputType === "number" ? "any" : null,
    inputmode: inputType === "number" ? "decimal" : null,
    placeholder: inputType === "text" ? "value" : null,
    title: inputType === "datetime-local" ? "In your local time; saved as UTC" : null,
  });
  const editor = {
    el: input,
    focusable: input,
    read() {
      const raw = input.value;
      if (raw === "") {
        if (input.validity && input.validity.badInput) {
          return { state: "bad", message: inputType === "number" ? "Enter a number" : "Enter a complete date", control: input };
        }
        return { state: "empty" };
      }
      if (inputType === "number") {
        const n = Number(raw);
        if (!Number.isFinite(n)) return { state: "bad", message: "Enter a number", control: input };
        return { state: "ok", value: n };
      }
      if (inputType === "datetime-local") {
        const utc = localToUtc(raw);
        return utc ? { state: "ok", value: utc } : { state: "bad", message: "Enter a complete date and time", control: input };
      }
      return { state: "ok", value: raw };
    },
    write(value) {
      if (inputType === "datetime-local") {
        const local = utcToLocal(value);
        if (/\.\d{3}$/.test(local)) input.step = "0.001";
        else if (/:\d{2}:\d{2}$/.test(local)) input.step = "1";
        input.value = local;
      } else if (inputType === "date") {
        input.value = String(value).slice(0, 10);
      } else {
        input.value = String(value);
      }
    },
    carry: () => [input.value],
    accept(strings) {
      if (strings[0] == null) return;
      input.value = strings[0];
      if (input.value !== strings[0] && inputType !== "text") input.value = "";
    },
    controlFor: () => input,
  };
  return editor;
}

export function betweenEditor(type) {
  const low = scalarEditor(type, "Value");
  const high = scalarEditor(type, "Upper bound");
  const el = h("span", { class: "value-between" }, low.el, text("and"), high.el);
  return {
    el,
    focusable: low.focusable,
    read() {
      const a = low.read();
      const b = high.read();
      if (a.state === "bad") return a;
      if (b.state === "bad") return b;
      if (a.state === "empty" || b.state === "empty") return { state: "empty" };
      return { state: "ok", value: [a.value, b.value] };
    },
    write(value) {
      const pair = asArray(value);
      low.write(pair[0] ?? "");
      high.write(pair[1] ?? "");
    },
    carry: () => [...low.carry(), ...high.carry()],
    accept(strings) {
      low.accept(strings.slice(0, 1));
      high.accept(strings.slice(1, 2));
    },
    controlFor: (tail) => (tail.startsWith("/1") ? high.focusable : low.focusable),
  };
}

/** A tag input: type a value, Enter or comma adds it as a chip. */
export function tagsEditor(type, onChange) {
  let tags = [];
  const list = h("ul", { class: "tags" });
  const input = h("input", {
    type: "text",
    class: "tag-entry",
    "aria-label": "Value",
    placeholder: type === "date" ? "YYYY-MM-DD, Enter" : "type, then Enter",
    inputmode: type === "number" ? "decimal" : null,
    autocomplete: "off",
  });
  const hintId = nextId("tags-hint");
  input.setAttribute("aria-describedby", hintId);
  const hint = h("span", { id: hintId, class: "visually-hidden", text: "Press Enter or comma to add a value to the list" });
  const el = h("span", { class: "tag-input" }, list, input, hint);
  el.addEventListener("click", (event) => {
    if (event.target === el || event.target === list) input.focus();
  });

  function render() {
    list.replaceChildren(...tags.map((tag, index) => h("li", { class: "tag" },
      h("span", { class: "tag-text", text: tag }),
      h("button", {
        type: "button",
        class: "tag-remove",
        "aria-label": `Remove ${tag}`,
        title: `Remove ${tag}`,
        text: "×",
        onclick: () => {
          tags.splice(index, 1);
          render();
          input.focus();
          onChange();
        },
      }))));
  }

  function add(raw) {
    let added = false;
    for (const part of raw.split(",")) {
      const tag = part.trim();
      if (tag !== "" && !tags.includes(tag)) {
        tags.push(tag);
        added = true;
      }
    }
    if (added) render();
    return added;
  }

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      if (add(input.value)) onChange();
      input.value = "";
    } else if (event.key === "Backspace" && input.value === "" && tags.length) {
      tags.pop();
      render();
      onChange();
    }
  });
  input.addEventListener("input", () => {
    const value = input.value;
    const cut = value.lastIndexOf(",");
    if (cut >= 0) {
      add(value.slice(0, cut));
      input.value = value.slice(cut + 1).trimStart();
    }
  });
  input.addEventListener("blur", () => {
    if (input.value.trim() !== "" && add(input.value)) {
      input.value = "";
      onChange();
    }
  });

  function typed(raw) {
    if (type === "number") {
      const n = Number(raw);
      return raw.trim() !== "" && Number.isFinite(n) ? { ok: n } : { bad: `“${raw}” is not a number` };
    }
    if (type === "boolean") {
      const lower = raw.toLowerCase();
      return lower === "true" || lower === "false" ? { ok: lower === "true" } : { bad: `“${raw}” is not true or false` };
    }
    return { ok: raw };
  }

  return {
    el,
    focusable: input,
    read() {
      const all = [...tags];
      const pending = input.value.trim();
      if (pending !== "") all.push(pending);
      if (!all.length) return { state: "empty" };
      const values = [];
      for (const raw of all) {
        const t = typed(raw);
        if ("bad" in t) return { state: "bad", message: t.bad, control: input };
        values.push(t.ok);
      }
      return { state: "ok", value: values };
    },
    write(value) {
      // One tag per value: a value may hold a comma.
      tags = [];
      for (const v of asArray(value)) {
        const tag = String(v);
        if (!tags.includes(tag)) tags.push(tag);
      }
      render();
    },
    carry: () => [...tags, input.value.trim()].filter((t) => t !== ""),
    accept(strings) {
      tags = [];
      for (const s of strings) if (s !== "" && !tags.includes(s)) tags.push(s);
      render();
    },
    controlFor: () => input,
  };
}

export function durationEditor(label, optional) {
  const amount = h("input", {
    type: "number",
    min: "0",
    step: "1",
    inputmode: "numeric",
    class: "duration-amount",
    "aria-label": label,
    placeholder: optional ? "any" : null,
    title: optional ? "Leave empty to count events of any time" : null,
  });
  const unit = select("Unit", UNITS, "d", { class: "duration-unit" });
  const el = h("span", { class: "duration-input" }, amount, unit);
  return {
    el,
    focusable: amount,
    amount,
    read() {
      const raw = amount.value.trim();
      if (raw === "") {
        if (amount.validity && amount.validity.badInput) return { state: "bad", message: "Enter a whole number", control: amount };
        return { state: "empty" };
      }
      if (!/^\d+$/.test(raw)) return { state: "bad", message: "Enter a whole number", control: amount };
      return { state: "ok", value: `${Number(raw)}${unit.value}` };
    },
    write(value) {
      const d = parseDuration(value);
      amount.value = d ? d.amount : "";
      unit.value = d ? d.unit : "d";
    },
    carry: () => [amount.value ? `${amount.value}${unit.value}` : ""],
    accept(strings) {
      const d = parseDuration(strings[0]);
      if (d) {
        amount.value = d.amount;
        unit.value = d.unit;
      }
    },
    controlFor: () => amount,
  };
}

export function segmentEditor() {
  const options = [["", "Choose a segment…"]];
  for (const s of SEGMENTS) options.push([s.id, s.kind === "static" ? `${s.name} (static)` : s.name]);
  const sel = select("Value", options, "", { class: "value-input segment-picker" });
  return {
    el: sel,
    focusable: sel,
    read: () => (sel.value ? { state: "ok", value: sel.value } : { state: "empty" }),
    write(id) {
      if (![...sel.options].some((o) => o.value === id)) {
        sel.append(h("option", { value: id, text: `Unknown segment ${id}` }));
      }
      sel.value = id;
    },
    carry: () => [],
    accept: () => {},
    controlFor: () => sel,
  };
}

export function noValueEditor() {
  return {
    el: null,
    focusable: null,
    read: () => ({ state: "ok", value: undefined }),
    write: () => {},
    carry: () => [],
    accept: () => {},
    controlFor: () => null,
  };
}

// -- the field picker --------------------------------------------------------------

/** What a field-select value stands for. */
export function describeChoice(choice) {
  if (!choice) return { kind: "blank" };
  if (choice === PSEUDO.event) return { kind: "event" };
  if (choice === PSEUDO.event_sum) return { kind: "event_sum" };
  if (choice === PSEUDO.segment) return { kind: "segment" };
  return { kind: "field", field: choice, type: fieldType(choice) || "string" };
}

export function fieldSelect() {
  const sel = h("select", { class: "field-select", "aria-label": "Field" });
  sel.append(h("option", { value: "", text: "Choose a field…" }));
  const groups = [
    ["Contact fields", FIELDS.filter((f) => f.builtin && !f.system && !SYSTEM_FIELDS.has(f.name))],
    ["Custom fields", FIELDS.filter((f) => !f.builtin && !f.system && !SYSTEM_FIELDS.has(f.name))
      .sort((a, b) => fieldLabel(a).localeCompare(fieldLabel(b)))],
    ["System", FIELDS.filter((f) => f.system || SYSTEM_FIELDS.has(f.name))],
  ];
  for (const [label, fields] of groups) {
    if (!fields.length) continue;
    const group = h("optgroup", { label });
    for (const f of fields) {
      group.append(h("option", { value: f.name, text: fieldLabel(f), title: `${f.name} (${f.type})` }));
    }
    sel.append(group);
  }
  sel.append(h("optgroup", { label: "Activity" },
    h("option", { value: PSEUDO.event, text: "Performed event" }),
    h("option", { value: PSEUDO.event_sum, text: "Total of event property" })));
  sel.append(h("optgroup", { label: "Segments" },
    h("option", { value: PSEUDO.segment, text: "In segment" })));
  return sel;
}

export function ensureFieldOption(sel, name) {
  if ([...sel.options].some((o) => o.value === name)) return;
  let group = sel.querySelector("optgroup[data-unknown]");
  if (!group) {
    group = h("optgroup", { label: "Other fields", "data-unknown": "" });
    sel.append(group);
  }
  group.append(h("option", { value: name, text: name }));
}
