/* The Scoring page: create, edit and delete lead scoring rules through
 * /v1/scoring-rules (signed in by the session cookie). A rule's event type
 * and `where` are the segment builder's event row (builder_rows.js), shown
 * alone: the page's stylesheet hides the parts a rule has no use for (the
 * field picker, Not, the count and the window).
 */
import { api } from "./builder_terms.js";
import { durationEditor } from "./builder_widgets.js";
import { Row } from "./builder_rows.js";

const form = document.getElementById("scoring-form");
const slot = document.getElementById("rule-row");
const points = document.getElementById("rule-points");
const expirySlot = document.getElementById("rule-expiry");
const formError = document.getElementById("scoring-error");
const submit = document.getElementById("rule-submit");
const cancel = document.getElementById("rule-cancel");
const heading = document.getElementById("rule-heading");
const actionError = document.getElementById("scoring-action-error");
const table = document.getElementById("scoring-rules");

// The row's owner: a rule has exactly one event row, never removed.
const owner = { removeRow() {} };
let row = null;
let editing = null; // the rule being edited, as the API answers it

function freshRow() {
  row = new Row(owner);
  row.setChoice({ kind: "event" }, false);
  slot.replaceChildren(row.el);
}

const expiry = durationEditor("Expire after", true);
expiry.amount.placeholder = "never";
expiry.amount.title = "Leave empty: the points never expire";
expiry.amount.setAttribute("aria-describedby", "rule-expiry-help");
expirySlot.append(expiry.el);

const invalid = [];
function clearErrors() {
  formError.textContent = "";
  row.clearError();
  for (const control of invalid.splice(0)) control.removeAttribute("aria-invalid");
}

function fieldError(message, control) {
  formError.textContent = message;
  if (control) {
    control.setAttribute("aria-invalid", "true");
    invalid.push(control);
    control.focus();
  }
}

function reset() {
  editing = null;
  delete form.dataset.ruleId;
  freshRow();
  points.value = "";
  expiry.write("");
  heading.textContent = "Create a rule";
  submit.textContent = "Create rule";
  cancel.hidden = true;
  clearErrors();
}

function load(rule) {
  editing = rule;
  form.dataset.ruleId = rule.id;
  freshRow();
  const node = { event: rule.event_type };
  if (rule.where) node.where = rule.where;
  row.load(node, false);
  points.value = String(rule.points);
  expiry.write(rule.expires_after || "");
  heading.textContent = `Edit the rule on ${rule.event_type}`;
  submit.textContent = "Save rule";
  cancel.hidden = false;
  clearErrors();
  form.scrollIntoView({ block: "nearest" });
  row.parts.eventType.focus();
}

/** The request body, or null after showing what is missing. */
function readBody() {
  const read = row.read();
  if (read.state !== "ok") {
    const control = read.control || row.firstControl();
    row.showError(read.message || "Choose an event type", control);
    control.focus();
    return null;
  }
  const body = { event_type: read.node.event };
  // The row hands `where` as a tree once it builds one, or as the text typed.
  if (read.node.where) body.where = read.node.where;
  else if (read.whereSource) body.where = read.whereSource;
  else if (editing) body.where = null;
  const raw = points.value.trim();
  if (raw === "" || !Number.isFinite(Number(raw))) {
    fieldError("Enter the points each matching event gives, like 10 (negative to take points away).", points);
    return null;
  }
  body.points = Number(raw);
  const expires = expiry.read();
  if (expires.state === "bad") {
    fieldError(`Expire after: ${expires.message}, or leave it empty for points that never expire.`, expiry.amount);
    return null;
  }
  if (expires.state === "ok") body.expires_after = expires.value;
  else if (editing) body.expires_after = null;
  return body;
}

function showServerError(error) {
  const field = error.details && error.details.field;
  const message = error.message;
  if (field === "where") row.showError(message, row.parts.where);
  else if (field === "event_type") row.showError(message, row.parts.eventType);
  else if (error.code === "invalid_condition") row.showError(message, row.parts.where);
  else if (field === "points") fieldError(message, points);
  else if (field === "expires_after") fieldError(message, expiry.amount);
  else fieldError(message, null);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const body = readBody();
  if (!body) return;
  submit.disabled = true;
  const res = editing
    ? await api("PATCH", `/v1/scoring-rules/${encodeURIComponent(editing.id)}`, body)
    : await api("POST", "/v1/scoring-rules", body);
  submit.disabled = false;
  if (!res.ok) {
    showServerError(res.error);
    return;
  }
  const done = editing ? "saved" : "created";
  location.assign(`/ui/scoring?${done}=${encodeURIComponent(res.data.id)}&rescored=${res.data.rescored}`);
});

cancel.addEventListener("click", () => {
  reset();
  if (table) table.querySelector("button[data-action]")?.focus();
});

if (table) {
  table.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const tr = button.closest("tr[data-rule-id]");
    let rule;
    try {
      rule = JSON.parse(tr.dataset.rule);
    } catch (_) {
      return;
    }
    actionError.textContent = "";
    if (button.dataset.action === "edit") {
      load(rule);
      return;
    }
    const what = rule.where_text ? `${rule.event_type} where ${rule.where_text}` : `every ${rule.event_type}`;
    if (!window.confirm(`Delete the rule on ${what}? Contacts lose the points it gave them. This can't be undone.`)) return;
    const res = await api("DELETE", `/v1/scoring-rules/${encodeURIComponent(rule.id)}`);
    if (!res.ok) {
      actionError.textContent = res.error.message;
      return;
    }
    location.assign(`/ui/scoring?deleted=1&rescored=${res.data.rescored}`);
  });
}

reset();
