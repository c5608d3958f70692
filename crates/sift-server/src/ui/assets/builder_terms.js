/* Sift's segment form: what the condition builder knows and says, no widget
 * of its own.
 *
 * - The page's elements and its data-* JSON (fields, segments, event types,
 *   the condition being edited).
 * - Which groups and rows a tree makes (layoutOf, layoutOfGroup).
 * - The operators and value kinds of each field type; dates and durations.
 * - The canonical text of a tree, and which trees rows can show (layoutOf).
 * - Requests: `api`, and where-clauses read by the server.
 *
 * The other segment form modules import this one; it imports none of them.
 */
// The segment form page (segments.rs fn form), the workflow form
// (workflows.rs fn form, its filter) and the scoring rule form, which builds
// one event row (scoring.rs, scoring.js), load these modules; each has
// #builder with the data-* JSON below.
export const form = document.getElementById("segment-form")
  || document.getElementById("scoring-form")
  || document.getElementById("workflow-form");
export const builderEl = document.getElementById("builder");

export const editingId = (form && form.dataset.segmentId) || null;
export const previewEl = document.getElementById("preview");
export const formErrorEl = document.getElementById("form-error");
export const conditionSection = document.getElementById("condition-section");
export const nameInput = document.getElementById("name");
export const descriptionInput = document.getElementById("description");
export const testBox = document.getElementById("test");

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

export const FIELDS = asArray(jsonAttr("data-fields", []));
export const SEGMENTS = asArray(jsonAttr("data-segments", [])).filter((s) => s && s.id !== editingId);
export const EVENT_TYPES = asArray(jsonAttr("data-event-types", [])).filter((t) => typeof t === "string");
export const INITIAL_TREE = jsonAttr("data-condition-tree", null);
export const INITIAL_TEXT = builderEl.getAttribute("data-condition") || "";

export const SYSTEM_FIELDS = new Set(["created_at", "updated_at", "last_seen_at", "anonymous", "lead_score"]);
const fieldByName = new Map(FIELDS.filter((f) => f && f.name).map((f) => [f.name, f]));
const segmentById = new Map(SEGMENTS.map((s) => [s.id, s]));

export function asArray(value) {
  return Array.isArray(value) ? value : [];
}

export function fieldLabel(field) {
  return field.label || field.name;
}

export function fieldType(name) {
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

export const CMP_OPS = [
  ["eq", "= equal to"], ["ne", "≠ not equal to"], ["lt", "< less than"],
  ["lte", "≤ at most"], ["gt", "> more than"], ["gte", "≥ at least"],
];
export const COUNT_OPS = [
  ["gte", "at least"], ["lte", "at most"], ["eq", "exactly"],
  ["ne", "not exactly"], ["gt", "more than"], ["lt", "fewer than"],
];
export const UNITS = [
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

export const PSEUDO = { event: "@event", event_sum: "@event_sum", segment: "@segment" };

// The operators `ignore_case` goes with (docs/conditions.md), on string and
// string list fields.
const CASE_OPS = new Set(["eq", "ne", "contains", "not_contains", "starts_with", "ends_with", "in", "not_in"]);

/** Whether a field of `type` tested with `op` can ignore case. */
export function caseApplies(type, op) {
  return (type === "string" || type === "string_list") && CASE_OPS.has(op);
}

export function opsFor(type) {
  return OPS[type] || OPS.string;
}

/** What a field test's value looks like: none, tags, between, duration or scalar. */
export function valueKind(op) {
  if (op === "is_set" || op === "is_not_set") return "none";
  if (op === "in" || op === "not_in") return "tags";
  if (op === "between") return "between";
  if (op === "in_last" || op === "before_ago" || op === "after_ago") return "duration";
  return "scalar";
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
export function localToUtc(raw) {
  const date = new Date(raw);
  if (Number.isNaN(date.getTime())) return null;
  return date.toISOString().replace(".000Z", "Z");
}

/** RFC 3339 (or a date: midnight UTC) → `datetime-local` text in local time. */
export function utcToLocal(value) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  let out = `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`
    + `T${pad(date.getHours())}:${pad(date.getMinutes())}`;
  if (date.getSeconds() || date.getMilliseconds()) out += `:${pad(date.getSeconds())}`;
  if (date.getMilliseconds()) out += `.${pad(date.getMilliseconds(), 3)}`;
  return out;
}

export function parseDuration(value) {
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

export function printTree(node, scope) {
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
    const fold = inner.ignore_case === true ? " ignoring case" : "";
    return `${nameText(inner.field)} ${testText(inner.op, inner.value, type)}${fold}`;
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

// -- tree → rows: which trees the builder can show ----------------------------------

export class Unfit extends Error {}

function isPredicate(node) {
  return Boolean(node) && typeof node === "object"
    && ("field" in node || "event" in node || "event_sum" in node || "in_segment" in node);
}

/** A predicate or `not` predicate as [node, negate]; throws Unfit otherwise. */
function rowSpec(node) {
  if (isPredicate(node)) return checkPredicate(node, false);
  if (node && typeof node === "object" && "not" in node) {
    if (isPredicate(node.not)) return checkPredicate(node.not, true);
    throw new Unfit("it negates a negation (not not …)");
  }
  throw new Unfit("it holds something the builder can't show");
}

function checkPredicate(node, negate) {
  if ("field" in node) {
    const type = fieldType(node.field);
    if (!type) throw new Unfit(`the builder doesn't know the field “${node.field}”`);
    if (!opsFor(type).some((o) => o[0] === node.op)) {
      throw new Unfit(`the builder has no operator “${node.op}” for the field “${node.field}”`);
    }
    if (node.ignore_case === true && !caseApplies(type, node.op)) {
      throw new Unfit(`the builder can't ignore case with “${node.op}” on the field “${node.field}”`);
    }
  }
  if ("event" in node && node.count && !COUNT_WORDS[node.count.op]) {
    throw new Unfit("it uses an event count the builder doesn't offer");
  }
  return [node, negate];
}

/**
 * The builder's layout of a tree: a list whose items are row specs
 * ([node, negate]) and groups ({group: [...], combinator, negate}), nested.
 */
export function layoutOf(tree) {
  if (!tree || typeof tree !== "object") return [];
  return layoutOfGroup(tree, "all", rowSpec);
}

/** Which groups and rows a tree makes: rows by `rowSpec(node)` (which throws when one can't be shown). */
export function layoutOfGroup(node, combinator, rowSpec) {
  const children = Array.isArray(node[combinator]) ? node[combinator] : [node];
  const out = [];
  for (const child of children) out.push(groupSpec(child, rowSpec) || rowSpec(child));
  return out;
}

function groupSpec(node, rowSpec) {
  if (!node || typeof node !== "object") return null;
  let negate = false;
  let inner = node;
  if ("not" in node && node.not && (Array.isArray(node.not.all) || Array.isArray(node.not.any))) {
    negate = true;
    inner = node.not;
  }
  for (const combinator of ["all", "any"]) {
    if (Array.isArray(inner[combinator])) {
      return { combinator, negate, group: layoutOfGroup(inner, combinator, rowSpec) };
    }
  }
  return null;
}

// -- requests -----------------------------------------------------------------------------

/** Every request: JSON, the session cookie and the `Sift-UI` header. */
export async function api(method, url, body, signal) {
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

// Where-clauses typed as text, read by the server once per distinct text.
const whereCache = new Map();
const WHERE_PREFIX = "performed x where (";

export function resolveWhere(source) {
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
    message = message.replace(/ at \d+:\d+(?=;|$)/, "");
    if (column > Array.from(source).length) {
      // The fault is the closing parenthesis this script added: the text ended too soon.
      return `Where: ${message.replace(/, got "\)"$/, "")} at the end`;
    }
    return `Where: ${message} (at character ${column})`;
  }
  return `Where: ${message}`;
}
