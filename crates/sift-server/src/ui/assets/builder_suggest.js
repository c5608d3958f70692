/* Sift's condition builder: what there is to pick.
 *
 * - The event types with the properties their events had
 *   (GET /v1/event-types), read once per page.
 * - Value suggestions as you type: a text input gets a <datalist> of the
 *   most frequent values (GET /v1/fields/{name}/values or
 *   /v1/event-types/{type}/properties/{name}/values), each with its count.
 */
import { builderEl, api } from "./builder_terms.js";
import { nextId, h } from "./builder_widgets.js";

let catalog = null;

/** Promise of Map(event type → [{name, type, count}]). */
export function eventCatalog() {
  if (!catalog) {
    catalog = api("GET", "/v1/event-types").then((res) => {
      const map = new Map();
      if (!res.ok) {
        catalog = null; // try again next time
        return map;
      }
      for (const item of (res.data && res.data.items) || []) {
        if (item && typeof item.type === "string") map.set(item.type, Array.isArray(item.properties) ? item.properties : []);
      }
      return map;
    });
  }
  return catalog;
}

/** Synchronous view of the catalog once it came (empty before). */
let known = new Map();
eventCatalog().then((map) => { known = map; });
export function propertiesOf(eventType) {
  return known.get(eventType) || [];
}
export function onCatalog(fn) {
  eventCatalog().then((map) => {
    known = map;
    fn();
  });
}

const propertyLists = new Map();
/** The id of a datalist of `eventType`'s properties (made once per type). */
export function propertyList(eventType) {
  let list = propertyLists.get(eventType);
  if (!list) {
    if (propertyLists.size >= 200) return null; // types typed by hand: enough lists
    list = h("datalist", { id: nextId("event-properties") });
    (builderEl || document.body).append(list);
    propertyLists.set(eventType, list);
  }
  // Filled once the catalog has the type (it may come after the first look).
  if (!list.childElementCount) {
    for (const p of propertiesOf(eventType)) {
      list.append(h("option", { value: p.name, label: `${p.type}, ${countText(p.count)} events` }));
    }
  }
  return list.id;
}

function countText(n) {
  return Number(n || 0).toLocaleString("en-US");
}

const answers = new Map();

function fetchValues(url) {
  if (!answers.has(url)) {
    const promise = api("GET", url).then((res) => {
      if (!res.ok) {
        answers.delete(url);
        return [];
      }
      return (res.data && Array.isArray(res.data.items)) ? res.data.items : [];
    });
    answers.set(url, promise);
    if (answers.size > 200) answers.delete(answers.keys().next().value);
  }
  return answers.get(url);
}

/**
 * Gives `input` a datalist of suggested values, refreshed as the user
 * types; `urlOf(text)` answers the request to make, or null for none.
 * `unit` names what the counts count ("contacts", "events").
 */
export function suggestValues(input, urlOf, unit) {
  if (input.__suggest) {
    input.__suggest.urlOf = urlOf;
    input.__suggest.unit = unit;
    return;
  }
  const id = nextId("value-suggestions");
  const list = h("datalist", { id, class: "value-suggestions" });
  input.setAttribute("list", id);
  input.setAttribute("autocomplete", "off");
  input.insertAdjacentElement("afterend", list);
  const state = { urlOf, unit, timer: null, seq: 0 };
  input.__suggest = state;
  const refresh = () => {
    const url = state.urlOf(input.value.trim());
    if (!url) {
      list.replaceChildren();
      return;
    }
    state.seq += 1;
    const seq = state.seq;
    fetchValues(url).then((items) => {
      if (seq !== state.seq) return;
      list.replaceChildren(...items.map((item) => h("option", {
        value: String(item.value),
        label: `${countText(item.count)} ${state.unit}`,
      })));
      input.dataset.suggestions = String(items.length);
    });
  };
  input.addEventListener("focus", refresh);
  input.addEventListener("input", () => {
    clearTimeout(state.timer);
    state.timer = setTimeout(refresh, 150);
  });
  if (document.activeElement === input) refresh();
}

export function fieldValuesUrl(field) {
  return (q) => `/v1/fields/${encodeURIComponent(field)}/values?limit=20${q ? `&q=${encodeURIComponent(q)}` : ""}`;
}

export function propertyValuesUrl(eventType, property) {
  return (q) => {
    const type = eventType();
    const name = property();
    if (!type || !name) return null;
    return `/v1/event-types/${encodeURIComponent(type)}/properties/${encodeURIComponent(name)}/values?limit=20`
      + `${q ? `&q=${encodeURIComponent(q)}` : ""}`;
  };
}

// "Total of event property": the property to add up, from those the event
// type's events had.
if (builderEl) {
  builderEl.addEventListener("focusin", (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.matches(".property-input")) return;
    const rowEl = input.closest(".condition-row");
    const type = rowEl && rowEl.querySelector(".event-type");
    const list = type && type.value.trim() ? propertyList(type.value.trim()) : null;
    if (list) input.setAttribute("list", list);
  });
}

// A string field row's value (and list entry) suggests the field's values;
// rows don't need to know (delegated from the builder).
if (builderEl) {
  builderEl.addEventListener("focusin", (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "text") return;
    if (!input.matches(".value-input, .tag-entry")) return;
    const rowEl = input.closest(".condition-row");
    if (!rowEl || rowEl.dataset.kind !== "field" || input.closest(".where-row")) return;
    const row = rowEl.__row;
    if (!row || !row.choice || !row.choice.field) return;
    if (row.choice.type !== "string" && row.choice.type !== "string_list") return;
    suggestValues(input, fieldValuesUrl(row.choice.field), "contacts");
  });
}
