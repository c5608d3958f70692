/* Sift: the segment create/edit page (form#segment-form).
 *
 * - A condition builder inside #builder: an "all of these" list of rows and
 *   OR groups ("at least one of these"), built from the page's data-* JSON.
 * - A text view of the same condition; the server parses it (preview with
 *   sample 0) when going back to the builder.
 * - A live preview (POST /v1/segments:preview), debounced, in-flight requests
 *   aborted and stale answers dropped.
 * - Save (POST or PATCH /v1/segments) and Delete, every error shown where it
 *   belongs: inside the row a JSON pointer leads to, at the text's line and
 *   column, next to the name, or in #form-error.
 *
 * The rows' controls are the model: the tree is read from them on demand.
 * An event row's `where` is typed as text; the server turns it into a tree
 * (cached per text) so that what is sent stays one JSON tree whose errors
 * point at rows. Plain ES2020, no dependencies, no build step.
 */
(() => {
  "use strict";

  const form = document.getElementById("segment-form");
  const builderEl = document.getElementById("builder");
  if (!form || !builderEl) return;

  const editingId = form.dataset.segmentId || null;
  const previewEl = document.getElementById("preview");
  const formErrorEl = document.getElementById("form-error");
  const conditionSection = document.getElementById("condition-section");
  const nameInput = document.getElementById("name");
  const descriptionInput = document.getElementById("description");
  const testBox = document.getElementById("test");

  // -- page data ----------------------------------------------------------------

  function jsonAttr(name, fallback) {
    const raw = builderEl.getAttribute(name);
    if (raw == null || raw.trim() === "" || raw.trim() === "null") return fallback;
    try {
      return JSON.parse(raw);
    } catch (err) {
      console.warn(`segment form: ${name} is not JSON`, err);
      return fallback;
    }
  }

  const FIELDS = asArray(jsonAttr("data-fields", []));
  const SEGMENTS = asArray(jsonAttr("data-segments", [])).filter((s) => s && s.id !== editingId);
  const EVENT_TYPES = asArray(jsonAttr("data-event-types", [])).filter((t) => typeof t === "string");
  const INITIAL_TREE = jsonAttr("data-condition-tree", null);
  const INITIAL_TEXT = builderEl.getAttribute("data-condition") || "";

  const SYSTEM_FIELDS = new Set(["created_at", "updated_at", "last_seen_at", "anonymous", "lead_score"]);
  const fieldByName = new Map(FIELDS.filter((f) => f && f.name).map((f) => [f.name, f]));
  const segmentById = new Map(SEGMENTS.map((s) => [s.id, s]));

  function asArray(value) {
    return Array.isArray(value) ? value : [];
  }

  function fieldLabel(field) {
    return field.label || field.name;
  }

  function fieldType(name) {
    const field = fieldByName.get(name);
    return field ? field.type : null;
  }

  // -- vocabulary ---------------------------------------------------------------

  // [json op, label, shown only when a loaded condition uses it]
  const OPS = {
    string: [
      ["eq", "equal to"], ["ne", "not equal to"], ["contains", "contains"],
      ["not_contains", "does not contain"], ["starts_with", "starts with"],
      ["ends_with", "ends with"], ["in", "is in list"], ["not_in", "is not in list"],
      ["is_set", "is set"], ["is_not_set", "is not set"],
      ["lt", "sorts before", true], ["lte", "sorts before or equal to", true],
      ["gt", "sorts after", true], ["gte", "sorts after or equal to", true],
      ["between", "between (A to Z)", true],
    ],
    number: [
      ["eq", "= equal to"], ["ne", "≠ not equal to"], ["lt", "< less than"],
      ["lte", "≤ at most"], ["gt", "> more than"], ["gte", "≥ at least"],
      ["between", "between"], ["in", "is in list"], ["not_in", "is not in list"],
      ["is_set", "is set"], ["is_not_set", "is not set"],
    ],
    date: [
      ["eq", "equal to"], ["ne", "not equal to"], ["lt", "before"], ["gt", "after"],
      ["gte", "equal to or after"], ["lte", "equal to or before"], ["between", "between"],
      ["in_last", "in last"], ["before_ago", "before … ago"], ["after_ago", "after … ago"],
      ["is_set", "is set"], ["is_not_set", "is not set"],
      ["in", "is in list", true], ["not_in", "is not in list", true],
    ],
    boolean: [
      ["eq", "is"], ["ne", "is not"], ["is_set", "is set"], ["is_not_set", "is not set"],
      ["in", "is in list", true], ["not_in", "is not in list", true],
    ],
    string_list: [
      ["contains", "contains"], ["not_contains", "does not contain"],
      ["is_set", "is set"], ["is_not_set", "is not set"],
    ],
  };
  OPS.datetime = OPS.date;

  const CMP_OPS = [
    ["eq", "= equal to"], ["ne", "≠ not equal to"], ["lt", "< less than"],
    ["lte", "≤ at most"], ["gt", "> more than"], ["gte", "≥ at least"],
  ];
  const COUNT_OPS = [
    ["gte", "at least"], ["lte", "at most"], ["eq", "exactly"],
    ["ne", "not exactly"], ["gt", "more than"], ["lt", "fewer than"],
  ];
  const UNITS = [
    ["m", "minutes"], ["h", "hours"], ["d", "days"],
    ["w", "weeks"], ["mo", "months"], ["y", "years"],
  ];
  const CMP_SYMBOL = { eq: "=", ne: "!=", lt: "<", lte: "<=", gt: ">", gte: ">=" };
  const COUNT_WORDS = Object.fromEntries(COUNT_OPS);
  const UNIT_WORD = { m: "minute", h: "hour", d: "day", w: "week", mo: "month", y: "year" };
  const TEXT_OP = {
    contains: "contains", not_contains: "not contains", starts_with: "starts with",
    ends_with: "ends with", in: "in", not_in: "not in",
  };

  const PSEUDO = { event: "@event", event_sum: "@event_sum", segment: "@segment" };

  function opsFor(type) {
    return OPS[type] || OPS.string;
  }

  /** What a field test's value looks like: none, tags, between, duration or scalar. */
  function valueKind(op) {
    if (op === "is_set" || op === "is_not_set") return "none";
    if (op === "in" || op === "not_in") return "tags";
    if (op === "between") return "between";
    if (op === "in_last" || op === "before_ago" || op === "after_ago") return "duration";
    return "scalar";
  }

  // -- small DOM helpers ----------------------------------------------------------

  let uid = 0;
  function nextId(prefix) {
    uid += 1;
    return `${prefix}-${uid}`;
  }

  /** `h("input", {type: "text", "aria-label": "Value"}, ...children)`. */
  function h(tag, attrs, ...children) {
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

  function select(label, options, value, attrs) {
    const el = h("select", Object.assign({ "aria-label": label }, attrs || {}));
    for (const [optValue, optLabel] of options) el.append(h("option", { value: optValue, text: optLabel }));
    if (value != null) el.value = value;
    return el;
  }

  function text(content, cls) {
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
  function eventTypeList() {
    if (datalistId) return datalistId;
    datalistId = nextId("event-types");
    const list = h("datalist", { id: datalistId });
    for (const type of EVENT_TYPES) list.append(h("option", { value: type }));
    builderEl.append(list);
    return datalistId;
  }

  // -- values: dates, numbers, durations ------------------------------------------------

  const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
  const DATETIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;

  function isDate(value) {
    const m = DATE_RE.exec(value);
    if (!m) return false;
    const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
    return d.getUTCFullYear() === +m[1] && d.getUTCMonth() === +m[2] - 1 && d.getUTCDate() === +m[3];
  }

  function isDateTime(value) {
    return DATETIME_RE.test(value) && !Number.isNaN(Date.parse(value));
  }

  const pad = (n, width) => String(n).padStart(width || 2, "0");

  /** `datetime-local` text (the user's local time) → RFC 3339 UTC. */
  function localToUtc(raw) {
    const date = new Date(raw);
    if (Number.isNaN(date.getTime())) return null;
    return date.toISOString().replace(".000Z", "Z");
  }

  /** RFC 3339 (or a date: midnight UTC) → `datetime-local` text in local time. */
  function utcToLocal(value) {
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return "";
    let out = `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`
      + `T${pad(date.getHours())}:${pad(date.getMinutes())}`;
    if (date.getSeconds() || date.getMilliseconds()) out += `:${pad(date.getSeconds())}`;
    if (date.getMilliseconds()) out += `.${pad(date.getMilliseconds(), 3)}`;
    return out;
  }

  function parseDuration(value) {
    const m = /^(\d+)(mo|m|h|d|w|y)$/.exec(String(value || ""));
    return m ? { amount: m[1], unit: m[2] } : null;
  }

  function durationText(value) {
    const d = parseDuration(value);
    if (!d) return String(value);
    return `${d.amount} ${UNIT_WORD[d.unit]}${d.amount === "1" ? "" : "s"}`;
  }

  // -- the canonical text of a tree (mirrors sift-lang's print.rs) ---------------------

  const RESERVED = ["not", "performed", "total", "in", "and", "or", "where", "true", "false"];

  function quote(value) {
    return `"${String(value).replace(/["\\]/g, "\\$&")}"`;
  }

  function nameText(name) {
    const plain = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name);
    return plain && !RESERVED.includes(name.toLowerCase()) ? name : quote(name);
  }

  /** A literal; `type` is the field's type, or null for an event property. */
  function scalarText(value, type) {
    if (typeof value === "number") return String(value);
    if (typeof value === "boolean") return String(value);
    const str = String(value);
    const dateLike = type === "date" || type === "datetime" || type == null;
    if (dateLike && (isDate(str) || isDateTime(str))) return str;
    return quote(str);
  }

  function groupOf(node) {
    if (Array.isArray(node.all)) return node.all;
    if (Array.isArray(node.any)) return node.any;
    return null;
  }

  function unwrapSingle(node) {
    let current = node;
    for (;;) {
      const group = groupOf(current);
      if (group && group.length === 1) current = group[0];
      else return current;
    }
  }

  function isMultiGroup(node) {
    const group = groupOf(unwrapSingle(node));
    return Boolean(group && group.length >= 2);
  }

  function isMultiAny(node) {
    const inner = unwrapSingle(node);
    return Array.isArray(inner.any) && inner.any.length >= 2;
  }

  function printUnary(node, scope) {
    return isMultiGroup(node) ? `(${printTree(node, scope)})` : printTree(node, scope);
  }

  function testText(op, value, type) {
    if (op in CMP_SYMBOL) return `${CMP_SYMBOL[op]} ${scalarText(value, type)}`;
    switch (op) {
      case "contains": case "not_contains": case "starts_with": case "ends_with":
        return `${TEXT_OP[op]} ${quote(value)}`;
      case "in": case "not_in":
        return `${TEXT_OP[op]} [${asArray(value).map((v) => scalarText(v, type)).join(", ")}]`;
      case "between":
        return `between ${scalarText(value[0], type)} and ${scalarText(value[1], type)}`;
      case "is_set": return "is set";
      case "is_not_set": return "is not set";
      case "in_last": return `in last ${durationText(value)}`;
      case "before_ago": return `before ${durationText(value)} ago`;
      case "after_ago": return `after ${durationText(value)} ago`;
      default: return `${op} ${JSON.stringify(value)}`;
    }
  }

  /** An event's ` where …`; `{__text}` is a where-clause still in the user's words. */
  function whereText(where) {
    if (!where) return "";
    if (typeof where.__text === "string") {
      const raw = where.__text.trim();
      const wrapped = /^\(.*\)$/s.test(raw) || !/\s(and|or)\s/i.test(raw) ? raw : `(${raw})`;
      return ` where ${wrapped}`;
    }
    return ` where ${printUnary(where, "event")}`;
  }

  function printTree(node, scope) {
    const inner = unwrapSingle(node);
    if (Array.isArray(inner.all)) {
      return inner.all
        .map((child) => (isMultiAny(child) ? `(${printTree(child, scope)})` : printTree(child, scope)))
        .join(" and ");
    }
    if (Array.isArray(inner.any)) return inner.any.map((child) => printTree(child, scope)).join(" or ");
    if ("not" in inner) return `not ${printUnary(inner.not, scope)}`;
    if ("field" in inner) {
      const type = scope === "event" ? null : fieldType(inner.field);
      return `${nameText(inner.field)} ${testText(inner.op, inner.value, type)}`;
    }
    if ("event" in inner) {
      let out = `performed ${nameText(inner.event)}${whereText(inner.where)}`;
      if (inner.count) {
        const n = inner.count.value;
        out += ` ${COUNT_WORDS[inner.count.op] || inner.count.op} ${n} ${n === 1 ? "time" : "times"}`;
      }
      if (inner.in_last) out += ` in last ${durationText(inner.in_last)}`;
      return out;
    }
    if ("event_sum" in inner) {
      let out = `total ${nameText(inner.event_sum)}.${nameText(inner.property)}${whereText(inner.where)}`;
      out += ` ${CMP_SYMBOL[inner.op] || inner.op} ${String(inner.value)}`;
      if (inner.in_last) out += ` in last ${durationText(inner.in_last)}`;
      return out;
    }
    if ("in_segment" in inner) {
      const segment = segmentById.get(inner.in_segment);
      return `in segment ${quote(segment ? segment.name : inner.in_segment)}`;
    }
    return "";
  }

  // -- value editors ----------------------------------------------------------------
  //
  // Each editor: { el, read() → {state: "ok"|"empty"|"bad", value?, message?, control?},
  // write(value), carry() → raw strings kept when the operator changes, accept(strings),
  // focusable, controlFor(pointerTail) }.

  function scalarEditor(type, label) {
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

  function betweenEditor(type) {
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
  function tagsEditor(type, onChange) {
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

  function durationEditor(label, optional) {
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

  function segmentEditor() {
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

  function noValueEditor() {
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

  // -- rows ---------------------------------------------------------------------------

  /** What a field-select value stands for. */
  function describeChoice(choice) {
    if (!choice) return { kind: "blank" };
    if (choice === PSEUDO.event) return { kind: "event" };
    if (choice === PSEUDO.event_sum) return { kind: "event_sum" };
    if (choice === PSEUDO.segment) return { kind: "segment" };
    return { kind: "field", field: choice, type: fieldType(choice) || "string" };
  }

  function fieldSelect() {
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

  class Row {
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
        where: p.where ? p.where.value : "",
        inLast: p.inLast ? p.inLast.carry()[0] : "",
      };
    }

    buildField(choice, before, carried) {
      const ops = opsFor(choice.type);
      const op = select("Operator", ops.filter((o) => !o[2]), null, { class: "op-select" });
      const sameType = carried && before.kind === "field" && before.type === choice.type;
      this.ensureOp(op, sameType && carried.op ? carried.op : ops[0][0]);
      this.parts.op = op;
      this.valueSlot = h("span", { class: "value-slot" });
      this.body.append(op, this.valueSlot);
      this.setValueEditor(sameType ? carried.strings : []);
      op.addEventListener("change", () => {
        this.setValueEditor(this.parts.value ? this.parts.value.carry() : []);
        changed();
      });
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
      const where = h("input", {
        type: "text",
        class: "where-input",
        "aria-label": "Where",
        placeholder: isSum ? "optional, e.g. category = \"shoes\"" : "optional, e.g. amount > 50",
        autocomplete: "off",
        spellcheck: "false",
        value: carried ? carried.where : "",
      });
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
        h("span", { class: "extra-part extra-where" }, text("where", "row-word"), where),
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
      } else if ("event" in node || "event_sum" in node) {
        const isSum = "event_sum" in node;
        this.fieldSel.value = isSum ? PSEUDO.event_sum : PSEUDO.event;
        this.setChoice({ kind: isSum ? "event_sum" : "event" }, false);
        this.parts.eventType.value = isSum ? node.event_sum : node.event;
        if (node.where) this.parts.where.value = printTree(node.where, "event");
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
     * missing), "bad" (a value that can't be sent) or "ok" with `node`, and
     * `whereText` when the server still has to read a where-clause.
     */
    read() {
      const c = this.choice;
      const p = this.parts;
      if (c.kind === "blank") return { state: "blank" };
      let node;
      let whereSource = null;
      if (c.kind === "field") {
        const value = p.value.read();
        if (value.state !== "ok") return value;
        node = { field: c.field, op: p.op.value };
        if (value.value !== undefined) node.value = value.value;
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
        const where = p.where.value.trim();
        if (where !== "") whereSource = where;
      }
      return { state: "ok", node, whereSource };
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
        case "where": return p.where || null;
        case "in_last": return p.inLast ? p.inLast.amount : null;
        case "in_segment": return p.value ? p.value.focusable : null;
        default: return null;
      }
    }

    showError(message, control) {
      this.clearError();
      const id = nextId("row-error");
      this.errorSlot.append(h("div", { class: "row-error", role: "alert", id, text: message }));
      this.el.setAttribute("aria-invalid", "true");
      const target = control || this.firstControl();
      if (target) {
        target.setAttribute("aria-invalid", "true");
        target.setAttribute("aria-describedby", id);
        this.invalidControl = target;
      }
    }

    clearError() {
      this.errorSlot.replaceChildren();
      this.el.removeAttribute("aria-invalid");
      if (this.invalidControl) {
        this.invalidControl.removeAttribute("aria-invalid");
        this.invalidControl.removeAttribute("aria-describedby");
        this.invalidControl = null;
      }
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

  function ensureFieldOption(sel, name) {
    if ([...sel.options].some((o) => o.value === name)) return;
    let group = sel.querySelector("optgroup[data-unknown]");
    if (!group) {
      group = h("optgroup", { label: "Other fields", "data-unknown": "" });
      sel.append(group);
    }
    group.append(h("option", { value: name, text: name }));
  }

  // -- groups and the root list ---------------------------------------------------------

  class Group {
    constructor(root) {
      this.root = root;
      this.rows = [];
      this.id = nextId("group");
      this.list = h("div", { class: "condition-list or-list" });
      this.errorSlot = h("div", { class: "row-error-slot" });
      const titleId = nextId("group-title");
      this.el = h("div", { class: "condition-group", role: "group", "aria-labelledby": titleId },
        h("div", { class: "group-head" },
          h("span", { class: "group-title", id: titleId, text: "At least one of these (OR group)" }),
          h("button", {
            type: "button", class: "group-remove", text: "Remove group",
            onclick: () => this.root.removeItem(this),
          })),
        this.list,
        h("div", { class: "group-actions" },
          h("button", {
            type: "button", class: "add-condition", text: "Add condition",
            onclick: () => this.addRow().fieldSel.focus(),
          })),
        this.errorSlot);
    }

    addRow() {
      const row = new Row(this);
      this.rows.push(row);
      this.list.append(row.el);
      return row;
    }

    removeRow(row) {
      const index = this.rows.indexOf(row);
      if (index < 0) return;
      this.rows.splice(index, 1);
      row.el.remove();
      const next = this.rows[index] || this.rows[index - 1];
      if (next) next.fieldSel.focus();
      else this.el.querySelector(".add-condition").focus();
      changed();
    }

    showError(message) {
      this.errorSlot.replaceChildren(h("div", { class: "row-error", role: "alert", text: message }));
      this.el.setAttribute("aria-invalid", "true");
    }

    clearError() {
      this.errorSlot.replaceChildren();
      this.el.removeAttribute("aria-invalid");
      for (const row of this.rows) row.clearError();
    }
  }

  const root = {
    items: [],
    list: h("div", { class: "condition-list and-list" }),
    addRow() {
      const row = new Row(this);
      this.items.push(row);
      this.list.append(row.el);
      updateEmptyState();
      return row;
    },
    addGroup(rows) {
      const group = new Group(this);
      for (let i = 0; i < rows; i += 1) group.addRow();
      this.items.push(group);
      this.list.append(group.el);
      updateEmptyState();
      return group;
    },
    removeRow(row) {
      this.removeItem(row);
    },
    removeItem(item) {
      const index = this.items.indexOf(item);
      if (index < 0) return;
      this.items.splice(index, 1);
      item.el.remove();
      updateEmptyState();
      const next = this.items[index] || this.items[index - 1];
      if (next instanceof Row) next.fieldSel.focus();
      else if (next) next.el.querySelector("button").focus();
      else addConditionBtn.focus();
      changed();
    },
    clear() {
      this.items = [];
      this.list.replaceChildren();
      updateEmptyState();
    },
    allRows() {
      const rows = [];
      for (const item of this.items) {
        if (item instanceof Group) rows.push(...item.rows);
        else rows.push(item);
      }
      return rows;
    },
    clearErrors() {
      for (const item of this.items) item.clearError();
    },
  };

  // -- tree ↔ rows ------------------------------------------------------------------------

  class Unfit extends Error {}

  function isPredicate(node) {
    return Boolean(node) && typeof node === "object"
      && ("field" in node || "event" in node || "event_sum" in node || "in_segment" in node);
  }

  /** A predicate or `not` predicate as [node, negate]; throws Unfit otherwise. */
  function rowSpec(node) {
    if (isPredicate(node)) return checkPredicate(node, false);
    if (node && typeof node === "object" && "not" in node) {
      if (isPredicate(node.not)) return checkPredicate(node.not, true);
      if (node.not && Array.isArray(node.not.any)) {
        throw new Unfit("it negates an OR group (not (… or …)), which rows can't show");
      }
      if (node.not && Array.isArray(node.not.all)) {
        throw new Unfit("it negates a group of conditions (not (… and …)), which rows can't show");
      }
      throw new Unfit("it negates something other than a single condition");
    }
    throw new Unfit("it nests groups deeper than rows inside one OR group");
  }

  function checkPredicate(node, negate) {
    if ("field" in node) {
      const type = fieldType(node.field);
      if (!type) throw new Unfit(`the builder doesn't know the field “${node.field}”`);
      if (!opsFor(type).some((o) => o[0] === node.op)) {
        throw new Unfit(`the builder has no operator “${node.op}” for the field “${node.field}”`);
      }
    }
    if ("event" in node && node.count && !COUNT_WORDS[node.count.op]) {
      throw new Unfit("it uses an event count the builder doesn't offer");
    }
    return [node, negate];
  }

  /** The builder's layout of a tree: a list of row specs and groups (arrays of specs). */
  function layoutOf(tree) {
    if (!tree || typeof tree !== "object") return [];
    const children = [];
    const flatten = (node) => {
      if (Array.isArray(node.all)) node.all.forEach(flatten);
      else children.push(node);
    };
    flatten(tree);
    return children.map((child) => {
      if (Array.isArray(child.any)) {
        return { group: child.any.map((member) => {
          if (member && Array.isArray(member.all)) {
            throw new Unfit("an OR group holds an AND group ((… and …) or …), which rows can't show");
          }
          return rowSpec(member);
        }) };
      }
      return rowSpec(child);
    });
  }

  function loadLayout(layout) {
    root.clear();
    for (const item of layout) {
      if (item.group) {
        const group = root.addGroup(0);
        for (const [node, negate] of item.group) group.addRow().load(node, negate);
      } else {
        root.addRow().load(item[0], item[1]);
      }
    }
  }

  // Where-clauses typed as text, read by the server once per distinct text.
  const whereCache = new Map();
  const WHERE_PREFIX = "performed x where (";

  function resolveWhere(source) {
    if (!whereCache.has(source)) {
      const promise = api("POST", "/v1/segments:preview", { condition: `${WHERE_PREFIX}${source})`, sample: 0 })
        .then((res) => {
          if (res.ok) {
            const tree = res.data && res.data.condition_tree;
            if (tree && tree.event === "x" && tree.where) return { tree: tree.where };
            return { message: "The where condition has unbalanced parentheses" };
          }
          if (res.status === 0 || res.status >= 500 || res.status === 401) whereCache.delete(source);
          return { message: whereMessage(res.error, source), network: res.status === 0 };
        });
      whereCache.set(source, promise);
    }
    return whereCache.get(source);
  }

  /** A where-clause error, its position moved from the wrapped text back to the user's. */
  function whereMessage(error, source) {
    let message = String(error.message || "invalid condition");
    const d = error.details || {};
    if (d.line === 1 && typeof d.column === "number") {
      const column = Math.max(1, d.column - WHERE_PREFIX.length);
      message = message.replace(/ at \d+:\d+$/, "");
      if (column > Array.from(source).length) {
        // The fault is the closing parenthesis this script added: the text ended too soon.
        return `Where: ${message.replace(/, got "\)"$/, "")} at the end`;
      }
      return `Where: ${message} (at character ${column})`;
    }
    return `Where: ${message}`;
  }

  /**
   * Reads every row. `forSave` also reports rows with something missing. Returns
   * {tree, owners: [[pointer, Row|Group]], problems: [{row, message, control}],
   * incomplete: n}.
   */
  async function buildTree(forSave) {
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
          problems.push({ row, message: where.message, control: row.parts.where });
        }
      }));
    }
    await Promise.all(pending);

    const children = [];
    const owners = [];
    let incomplete = 0;
    const wrap = (result, row) => (row.notBox.checked ? { not: result.node } : result.node);
    for (const item of root.items) {
      const index = children.length;
      if (item instanceof Group) {
        const members = [];
        const memberOwners = [];
        for (const row of item.rows) {
          const result = results.get(row);
          if (result.state === "ok") {
            memberOwners.push([`/all/${index}/any/${members.length}`, row]);
            members.push(wrap(result, row));
          } else if (result.state !== "blank") incomplete += 1;
        }
        if (members.length) {
          children.push({ any: members });
          owners.push([`/all/${index}`, item], ...memberOwners);
        }
      } else {
        const result = results.get(item);
        if (result.state === "ok") {
          owners.push([`/all/${index}`, item]);
          children.push(wrap(result, item));
        } else if (result.state !== "blank") incomplete += 1;
      }
    }
    return { tree: { all: children }, owners, problems, incomplete };
  }

  /** The text of the builder's rows right now (where-clauses as typed). */
  function builderText() {
    const children = [];
    let left = 0;
    const nodeOf = (row) => {
      const result = row.read();
      if (result.state !== "ok") {
        if (result.state !== "blank") left += 1;
        return null;
      }
      let node = result.node;
      if (result.whereSource) node = Object.assign({}, node, { where: { __text: result.whereSource } });
      return row.notBox.checked ? { not: node } : node;
    };
    for (const item of root.items) {
      if (item instanceof Group) {
        const members = item.rows.map(nodeOf).filter(Boolean);
        if (members.length) children.push({ any: members });
      } else {
        const node = nodeOf(item);
        if (node) children.push(node);
      }
    }
    return { text: printTree({ all: children }, "contact"), left };
  }

  // -- requests -----------------------------------------------------------------------------

  /** Every request: JSON, the session cookie and the `Sift-UI` header. */
  async function api(method, url, body, signal) {
    let res;
    try {
      res = await fetch(url, {
        method,
        headers: { "Content-Type": "application/json", "Sift-UI": "1" },
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      return {
        ok: false,
        status: 0,
        error: { code: "network", message: "Could not reach the server. Check the connection and try again.", details: {} },
      };
    }
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    if (res.ok) return { ok: true, status: res.status, data };
    let error = data && data.error && typeof data.error === "object" ? data.error : null;
    if (!error) {
      error = { code: `http_${res.status}`, message: `The server answered ${res.status} ${res.statusText}`.trim(), details: {} };
    }
    if (!error.details || typeof error.details !== "object") error.details = {};
    return { ok: false, status: res.status, error };
  }

  // -- the builder's chrome ---------------------------------------------------------------------

  const addConditionBtn = h("button", { type: "button", class: "add-condition", text: "Add condition" });
  const addGroupBtn = h("button", { type: "button", class: "add-group", text: "Add OR group" });
  const emptyHint = h("p", { class: "builder-empty muted", text: "No conditions yet: every contact matches. Add a condition to narrow it down." });
  const builderView = h("div", { class: "builder-view" },
    h("p", { class: "builder-lead", text: "Contacts must match all of these:" }),
    root.list,
    emptyHint,
    h("div", { class: "builder-actions" }, addConditionBtn, addGroupBtn));

  const textArea = h("textarea", {
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

  const builderBtn = h("button", { type: "button", class: "view-button", text: "Builder", "aria-pressed": "true" });
  const textBtn = h("button", { type: "button", class: "view-button", text: "Text", "aria-pressed": "false" });
  const note = h("p", { id: "builder-note", class: "builder-note", role: "status", hidden: true });

  builderEl.replaceChildren(
    h("div", { class: "builder-toolbar" },
      h("div", { class: "view-switch", role: "group", "aria-label": "Condition view" }, builderBtn, textBtn)),
    note,
    builderView,
    textView);

  function updateEmptyState() {
    emptyHint.hidden = root.items.length > 0;
  }

  addConditionBtn.addEventListener("click", () => {
    root.addRow().fieldSel.focus();
  });
  addGroupBtn.addEventListener("click", () => {
    root.addGroup(2).rows[0].fieldSel.focus();
  });

  // -- views -------------------------------------------------------------------------------------

  let mode = "builder";
  let textFromBuilder = null; // the text shown when the builder was left, to skip a re-parse

  function showNote(message) {
    note.textContent = message || "";
    note.hidden = !message;
  }

  function setMode(next) {
    mode = next;
    builderView.hidden = next !== "builder";
    textView.hidden = next !== "text";
    builderBtn.setAttribute("aria-pressed", String(next === "builder"));
    textBtn.setAttribute("aria-pressed", String(next === "text"));
    builderEl.dataset.view = next;
  }

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

  function clearTextError() {
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
  function showTextError(error, moveCaret) {
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

  function clearFormError(sources) {
    if (!formErrorSource || (sources && !sources.includes(formErrorSource))) return;
    formErrorEl.replaceChildren();
    formErrorSource = null;
  }

  function showFormError(source, ...content) {
    formErrorEl.replaceChildren(...content);
    formErrorSource = source;
  }

  function errorParagraph(error) {
    const p = h("p", { text: error.message || "Something went wrong" });
    if (error.code === "unauthorized" || (error.code && error.code === "http_401")) {
      p.append(" ", h("a", { href: "/ui/login", text: "Sign in again" }));
    }
    return p;
  }

  /** A condition error from the server, shown where it belongs. True when it was placed. */
  function placeConditionError(error, built, source) {
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
        const message = String(error.message).replace(/ at (\/\S*)?$/, "");
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
      const rows = root.allRows().filter((row) => row.parts.where && row.parts.where.value.trim() !== "");
      for (const row of rows) row.showError(error.message, row.parts.where);
      if (rows.length) return true;
    }
    return false;
  }

  // -- live preview ------------------------------------------------------------------------------

  let previewTimer = null;
  let previewSeq = 0;
  let previewAbort = null;

  function isStatic() {
    const checked = form.querySelector('input[name="kind"]:checked');
    return Boolean(checked && checked.value === "static");
  }

  /** Something in the condition changed: preview it soon (`now` skips the wait). */
  function changed(now) {
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
        h("strong", { "data-preview-size": "", text: String(size) }),
        size === 1 ? " contact matches" : " contacts match"),
    ];
    if (editingId && data.entering != null) {
      parts.push(h("p", { class: "preview-delta" },
        h("span", { "data-preview-entering": "", text: String(Number(data.entering) || 0) }),
        " would enter, ",
        h("span", { "data-preview-leaving": "", text: String(Number(data.leaving) || 0) }),
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

  function applyKind() {
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
    const res = editingId
      ? await api("PATCH", `/v1/segments/${encodeURIComponent(editingId)}`, body)
      : await api("POST", "/v1/segments", body);
    if (res.ok) {
      const segment = res.data || {};
      const evaluation = segment.evaluation || {};
      const id = segment.id || editingId;
      const query = `entered=${Number(evaluation.entered) || 0}&exited=${Number(evaluation.exited) || 0}`;
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
      if (!window.confirm(`Delete the segment “${label}”? This can't be undone.`)) return;
      clearFormError();
      deleteBtn.disabled = true;
      const res = await api("DELETE", `/v1/segments/${encodeURIComponent(editingId)}`);
      if (res.ok) {
        window.location.assign("/ui/segments");
        return;
      }
      deleteBtn.disabled = false;
      const error = res.error;
      if (error.code === "segment_in_use") {
        const usages = asArray(error.details.usages);
        const list = h("ul", { class: "usages" });
        for (const usage of usages) {
          const item = h("li", {});
          if (usage.type === "segment") {
            item.append("Segment ", h("a", { href: `/ui/segments/${encodeURIComponent(usage.id)}`, text: usage.name || usage.id }));
          } else {
            item.append(`${usage.type ? usage.type[0].toUpperCase() + usage.type.slice(1) : "Used by"} `,
              h("strong", { text: usage.name || usage.id }));
          }
          if (usage.role) item.append(h("span", { class: "muted", text: ` (${usage.role})` }));
          list.append(item);
        }
        showFormError("delete",
          h("p", { text: `This segment can't be deleted while ${usages.length === 1 ? "this refers" : "these refer"} to it:` }),
          list,
          h("p", { class: "muted", text: "Edit or delete them first." }));
      } else {
        showFormError("delete", errorParagraph(error));
      }
      formErrorEl.scrollIntoView({ block: "nearest" });
    });
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
})();
