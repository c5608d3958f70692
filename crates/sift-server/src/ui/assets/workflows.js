// Workflow pages: the list, one workflow with its run history, and the
// create/edit form. Everything is read from and saved through /v1/workflows
// (signed in by the session cookie), so the UI adds no rules of its own.
"use strict";

(function workflows() {
  const UNITS = [["m", "minutes"], ["h", "hours"], ["d", "days"], ["w", "weeks"], ["mo", "months"], ["y", "years"]];
  const ACTIONS = [
    ["add_to_segment", "Add to static segment"],
    ["remove_from_segment", "Remove from static segment"],
    ["add_score", "Add points"],
    ["set_property", "Set a property"],
    ["webhook", "Call a webhook"],
  ];
  const STATUS = { draft: "Draft", test: "Test", active: "Active", paused: "Paused" };

  async function api(method, url, body) {
    const init = { method, credentials: "same-origin", headers: { "Sift-UI": "1" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    const answer = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const error = new Error(answer && answer.error ? answer.error.message : `The server answered ${response.status}.`);
      error.details = (answer && answer.error && answer.error.details) || {};
      throw error;
    }
    return answer;
  }

  // Small DOM builder: h("td", {class: "x"}, "text", child...).
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c);
    return el;
  }
  function options(select, pairs, chosen) {
    select.replaceChildren(...pairs.map(([value, label]) => h("option", { value, selected: value === chosen }, label)));
  }
  const segmentsOf = (root) => JSON.parse(root.dataset.segments || "[]");
  const nameOf = (segments, id) => (segments.find((s) => s.id === id) || { name: id }).name;
  const link = (href, text) => h("a", { href }, text);
  const workflowUrl = (id) => `/ui/workflows/${encodeURIComponent(id)}`;

  function triggerWords(trigger, segments) {
    if (trigger.type === "event") {
      return `performs ${trigger.event_type}${trigger.where_text ? ` where ${trigger.where_text}` : ""}`;
    }
    const verb = trigger.type === "segment_entered" ? "enters" : "leaves";
    return `${verb} ${nameOf(segments, trigger.segment)}`;
  }
  function actionWords(action, segments) {
    switch (action.type) {
      case "add_to_segment": return `add to ${nameOf(segments, action.segment)}`;
      case "remove_from_segment": return `remove from ${nameOf(segments, action.segment)}`;
      case "add_score": return `add ${action.points} points${action.expires_after ? ` for ${action.expires_after}` : ""}`;
      case "set_property": return `set ${action.field} to ${JSON.stringify(action.value)}`;
      case "webhook": return `call ${action.url}`;
      default: return action.type;
    }
  }

  // ---- The list ------------------------------------------------------------
  const list = document.getElementById("workflows-list");
  if (list) {
    const segments = segmentsOf(list);
    api("GET", "/v1/workflows").then((page) => {
      if (!page.items.length) {
        list.replaceChildren(h("div", { id: "empty-state", class: "empty" },
          h("h2", {}, "No workflows yet"),
          h("p", {}, "When a contact enters VIP, add them to Gifted and give them 10 points: a workflow does it the moment it happens."),
          h("a", { class: "button primary", href: "/ui/workflows/new" }, "Create your first workflow")));
        return;
      }
      const rows = page.items.map((w) => h("tr", { "data-workflow-id": w.id },
        h("td", { class: "name" }, link(workflowUrl(w.id), w.name)),
        h("td", {}, h("span", { class: `badge status-${w.status}` }, STATUS[w.status] || w.status)),
        h("td", {}, `When a contact ${triggerWords(w.trigger, segments)}`),
        h("td", { class: "muted" }, w.actions.map((a) => actionWords(a, segments)).join(", "))));
      list.replaceChildren(h("div", { class: "table-wrap" }, h("table", { id: "workflows" },
        h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Status"), h("th", {}, "Trigger"), h("th", {}, "Actions"))),
        h("tbody", {}, rows))));
    }).catch((e) => list.replaceChildren(h("p", { role: "alert", class: "error" }, e.message)));
  }

  // ---- One workflow and its runs -------------------------------------------
  const detail = document.getElementById("workflow-page");
  if (detail) {
    const id = detail.dataset.workflowId;
    const segments = segmentsOf(detail);
    const base = `/v1/workflows/${encodeURIComponent(id)}`;
    const render = (w) => {
      document.title = `${w.name} · Sift`;
      const status = (next, label) => h("button", { type: "button", class: next === "active" ? "primary" : "", onclick: () => setStatus(next) }, label);
      const buttons = [];
      if (w.status !== "active") buttons.push(status("active", "Activate"));
      if (w.status !== "test" && w.test_segment) buttons.push(status("test", "Run in test mode"));
      if (w.status === "active" || w.status === "test") buttons.push(status("paused", "Pause"));
      detail.replaceChildren(
        h("div", { class: "page-head" },
          h("div", {}, h("h1", {}, w.name),
            h("p", { class: "muted" }, h("span", { id: "workflow-status", class: `badge status-${w.status}`, "data-status": w.status }, STATUS[w.status] || w.status),
              w.test_segment ? ` · test segment ${nameOf(segments, w.test_segment)}` : "")),
          h("div", { class: "actions" }, ...buttons, h("a", { class: "button", href: `${workflowUrl(id)}/edit` }, "Edit"))),
        h("p", { id: "status-error", role: "alert" }),
        h("section", { class: "card", id: "definition" },
          h("h2", {}, "Definition"),
          h("ul", { class: "words" },
            h("li", {}, `When a contact ${triggerWords(w.trigger, segments)}`),
            w.filter_text ? h("li", {}, "only if ", h("code", {}, w.filter_text)) : null,
            ...w.actions.map((a, i) => h("li", {}, `${i + 1}. ${actionWords(a, segments)}`)))));
    };
    async function setStatus(next) {
      try {
        render(await api("PATCH", base, { status: next }));
      } catch (e) {
        document.getElementById("status-error").textContent = e.message;
      }
    }
    const runsBox = document.getElementById("runs");
    // What started a run, in words: "Entered VIP", "Event purchase".
    const segmentNames = Object.fromEntries(
      JSON.parse(document.getElementById("workflow-page")?.dataset.segments || "[]").map((seg) => [seg.id, seg.name]));
    const triggerWords = (trigger) => {
      if (trigger.type === "event") return `Event ${trigger.event_type}`;
      const name = segmentNames[trigger.segment] || "the segment";
      return trigger.type === "segment_exited" ? `Left ${name}` : `Entered ${name}`;
    };
    async function loadRuns() {
      try {
        const page = await api("GET", `${base}/runs?limit=50`);
        if (!page.items.length) {
          runsBox.replaceChildren(h("p", { class: "muted", id: "no-runs" }, "No runs yet. Runs appear here the moment the trigger happens."));
          return;
        }
        const rows = page.items.map((run) => h("tr", { "data-run-id": run.id, "data-contact-id": run.contact_id, "data-status": run.status },
          h("td", {}, link(`/ui/contacts/${encodeURIComponent(run.contact_id)}`, run.contact_id)),
          h("td", {}, triggerWords(run.trigger)),
          h("td", {}, run.mode),
          h("td", {}, h("span", { class: `badge run-${run.status}` }, run.status)),
          h("td", {}, run.actions.map((a) => `${a.type}: ${a.result}`).join("; ")),
          h("td", { class: "error" }, run.error || ""),
          h("td", {}, h("time", { datetime: run.at, title: run.at }, typeof relative === "function" ? relative(run.at) : run.at))));
        runsBox.replaceChildren(h("div", { class: "table-wrap" }, h("table", { id: "runs-table" },
          h("thead", {}, h("tr", {}, ...["Contact", "Trigger", "Mode", "Status", "Actions", "Error", "At"].map((t) => h("th", {}, t)))),
          h("tbody", {}, rows))));
      } catch (e) {
        runsBox.replaceChildren(h("p", { role: "alert", class: "error" }, e.message));
      }
    }
    api("GET", base).then(render).catch((e) => detail.replaceChildren(h("p", { role: "alert", id: "page-error" }, e.message)));
    loadRuns();
    document.getElementById("refresh-runs").addEventListener("click", loadRuns);
    // Runs follow commits: the live size stream speaks after each durable
    // commit that changed a segment; a run also shows after a manual refresh.
    let pending = null;
    const source = new EventSource("/ui/live/sizes");
    source.addEventListener("sizes", () => {
      clearTimeout(pending);
      pending = setTimeout(loadRuns, 300);
    });
    addEventListener("pagehide", () => source.close());
  }

  // ---- The form --------------------------------------------------------------
  const form = document.getElementById("workflow-form");
  if (!form) return;
  const id = form.dataset.workflowId;
  const segments = segmentsOf(form);
  const fields = JSON.parse(form.dataset.fields || "[]").filter((f) => !f.system);
  const $ = (sel) => form.querySelector(sel);
  const statusEl = $("#wf-status");
  const testBox = $("#wf-test-segment-box");
  const triggerType = $("#wf-trigger-type");
  const actionsList = $("#wf-actions");
  let uid = 0;

  // No segment is picked for the marketer: a workflow on the wrong one acts on the wrong people.
  options($("#wf-trigger-segment"), [["", "Choose…"], ...segments.map((s) => [s.id, s.name])]);
  options($("#wf-test-segment"), [["", "Choose a test segment"], ...segments.filter((s) => s.test).map((s) => [s.id, s.name])]);
  $("#wf-event-types").replaceChildren(...JSON.parse(form.dataset.eventTypes || "[]").map((t) => h("option", { value: t })));
  const syncVisibility = () => {
    testBox.hidden = statusEl.value !== "test";
    const isEvent = triggerType.value === "event";
    $("#wf-trigger-segment-box").hidden = isEvent;
    $("#wf-trigger-event-box").hidden = !isEvent;
  };
  statusEl.addEventListener("change", syncVisibility);
  triggerType.addEventListener("change", syncVisibility);

  function labelled(label, control) {
    const cid = `wf-c${++uid}`;
    control.id = cid;
    return [h("label", { for: cid }, label), control];
  }
  function valueControl(field, value) {
    const type = (fields.find((f) => f.name === field) || {}).type || "string";
    let control;
    if (type === "boolean") {
      control = h("select", { class: "value" });
      options(control, [["true", "true"], ["false", "false"]], String(value ?? true));
    } else {
      const inputType = { number: "number", date: "date", datetime: "datetime-local" }[type] || "text";
      control = h("input", { class: "value", type: inputType, step: type === "number" ? "any" : null });
      if (value !== undefined && value !== null) {
        control.value = Array.isArray(value) ? value.join(", ") : type === "datetime" ? String(value).slice(0, 16) : String(value);
      }
      if (type === "string_list") control.placeholder = "comma, separated, values";
    }
    control.dataset.type = type;
    return control;
  }
  function readValue(control) {
    const raw = control.value;
    switch (control.dataset.type) {
      case "boolean": return raw === "true";
      case "number": return raw === "" ? null : Number(raw);
      case "datetime": return raw ? new Date(raw).toISOString() : null;
      case "string_list": return raw.split(",").map((s) => s.trim()).filter(Boolean);
      default: return raw;
    }
  }

  // One action row: a type picker and the inputs that type needs.
  function addAction(action) {
    const kind = h("select", { class: "action-type" });
    options(kind, ACTIONS, action ? action.type : "add_to_segment");
    const body = h("div", { class: "action-body" });
    const error = h("div", { class: "row-error", role: "alert" });
    const row = h("li", { class: "action-row" },
      h("div", { class: "action-head" }, ...labelled("Action", kind),
        h("button", { type: "button", "aria-label": "Move up", onclick: () => row.previousElementSibling && row.previousElementSibling.before(row) }, "↑"),
        h("button", { type: "button", "aria-label": "Move down", onclick: () => row.nextElementSibling && row.nextElementSibling.after(row) }, "↓"),
        h("button", { type: "button", onclick: () => row.remove() }, "Remove")),
      body, error);
    const build = (a) => {
      const type = kind.value;
      const parts = [];
      if (type === "add_to_segment" || type === "remove_from_segment") {
        const seg = h("select", { class: "segment" });
        options(seg, segments.filter((s) => s.kind === "static").map((s) => [s.id, s.name + (s.test ? " (test)" : "")]), a && a.segment);
        parts.push(...labelled("Static segment", seg));
      } else if (type === "add_score") {
        const points = h("input", { class: "points", type: "number", step: "any", value: a ? a.points : 10 });
        const m = a && a.expires_after ? /^(\d+)(\D+)$/.exec(a.expires_after) : null;
        const amount = h("input", { class: "expires-amount", type: "number", min: "1", placeholder: "never", value: m ? m[1] : null });
        const unit = h("select", { class: "expires-unit" });
        options(unit, UNITS, m ? m[2] : "d");
        parts.push(...labelled("Points", points), ...labelled("Expire after", amount), ...labelled("Unit", unit));
      } else if (type === "set_property") {
        const field = h("select", { class: "field" });
        options(field, fields.map((f) => [f.name, f.label || f.name]), a && a.field);
        const holder = h("span", { class: "value-holder" });
        const place = (value) => holder.replaceChildren(...labelled("Value", valueControl(field.value, value)));
        field.addEventListener("change", () => place());
        place(a && a.value);
        parts.push(...labelled("Property", field), holder);
      } else {
        const url = h("input", { class: "url", type: "url", placeholder: "https://example.com/hook", value: a && a.url });
        // The API shows only the secret's end; left empty, the saved one is kept.
        const kept = a && a.secret_hint ? `kept (${a.secret_hint}); type to replace` : null;
        const secret = h("input", { class: "secret", type: "password", autocomplete: "off", placeholder: kept });
        parts.push(...labelled("URL", url), ...labelled("Secret (optional)", secret));
      }
      body.replaceChildren(...parts);
    };
    kind.addEventListener("change", () => build());
    build(action);
    actionsList.append(row);
    return row;
  }
  $("#wf-add-action").addEventListener("click", () => addAction().querySelector("select").focus());

  function readAction(row) {
    const type = row.querySelector(".action-type").value;
    const val = (sel) => row.querySelector(sel);
    switch (type) {
      case "add_to_segment":
      case "remove_from_segment":
        return { type, segment: val(".segment").value };
      case "add_score": {
        const action = { type, points: Number(val(".points").value) };
        if (val(".expires-amount").value) action.expires_after = `${val(".expires-amount").value}${val(".expires-unit").value}`;
        return action;
      }
      case "set_property":
        return { type, field: val(".field").value, value: readValue(val(".value")) };
      default: {
        const action = { type, url: val(".url").value.trim() };
        if (val(".secret").value) action.secret = val(".secret").value;
        return action;
      }
    }
  }

  // The filter and the event's where are condition rows (workflow_builder.js,
  // an ES module loaded after this script).
  const builderReady = new Promise((resolve) => {
    if (window.siftWorkflowBuilder) resolve(window.siftWorkflowBuilder);
    else window.addEventListener("sift-builder-ready", () => resolve(window.siftWorkflowBuilder), { once: true });
  });

  /** The body to send, or null when a condition row is unfinished (shown in it). */
  async function body() {
    const conditions = await builderReady;
    const trigger = triggerType.value === "event"
      ? { type: "event", event_type: $("#wf-trigger-event").value.trim() }
      : { type: triggerType.value, segment: $("#wf-trigger-segment").value };
    if (trigger.type === "event") {
      const where = conditions.where();
      if (where.error) return null;
      if (where.value !== undefined) trigger.where = where.value;
    }
    const filter = await conditions.filter();
    if (filter.error) return null;
    const out = {
      name: $("#wf-name").value.trim(),
      status: statusEl.value,
      trigger,
      actions: Array.from(actionsList.children).map(readAction),
    };
    if (statusEl.value === "test") out.test_segment = $("#wf-test-segment").value || null;
    out.filter = filter.value;
    return out;
  }

  // Puts a server error next to the part it names (`details.field`).
  function showError(error) {
    form.querySelectorAll('[role="alert"]:not(.row-error)').forEach((el) => (el.textContent = ""));
    form.querySelectorAll(".action-row .row-error").forEach((el) => (el.textContent = ""));
    if (window.siftWorkflowBuilder && window.siftWorkflowBuilder.placeError(error)) return;
    const field = String(error.details.field || "");
    const action = /^actions\[(\d+)\]/.exec(field);
    let target = $("#form-error");
    if (action && actionsList.children[Number(action[1])]) target = actionsList.children[Number(action[1])].querySelector(".row-error");
    else if (field.startsWith("actions")) target = $("#wf-actions-error");
    else if (field.startsWith("trigger")) target = $("#wf-trigger-error");
    else if (field.startsWith("filter") || (error.details.line && !field)) target = $("#wf-filter-error");
    else if (field === "name") target = $("#wf-name-error");
    else if (field === "test_segment") target = $("#wf-test-segment-error");
    target.textContent = error.message;
    target.closest("li, fieldset, div")?.scrollIntoView({ block: "center" });
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (triggerType.value !== "event" && !$("#wf-trigger-segment").value) {
      showError({ message: "Choose the segment whose entries or exits start this workflow.", details: { field: "trigger" } });
      $("#wf-trigger-segment").focus();
      return;
    }
    try {
      const sent = await body();
      if (!sent) return;
      const saved = id
        ? await api("PATCH", `/v1/workflows/${encodeURIComponent(id)}`, sent)
        : await api("POST", "/v1/workflows", sent);
      location.href = workflowUrl(saved.id);
    } catch (error) {
      showError(error);
    }
  });
  const del = $("#wf-delete");
  if (del) {
    del.addEventListener("click", async () => {
      if (!confirm("Delete this workflow? Its run history goes with it.")) return;
      try {
        await api("DELETE", `/v1/workflows/${encodeURIComponent(id)}`);
        location.href = "/ui/workflows";
      } catch (error) {
        showError(error);
      }
    });
  }

  if (id) {
    api("GET", `/v1/workflows/${encodeURIComponent(id)}`).then((w) => {
      $("#wf-name").value = w.name;
      statusEl.value = w.status;
      if (w.test_segment) $("#wf-test-segment").value = w.test_segment;
      triggerType.value = w.trigger.type;
      if (w.trigger.type === "event") {
        $("#wf-trigger-event").value = w.trigger.event_type;
      } else {
        $("#wf-trigger-segment").value = w.trigger.segment;
      }
      w.actions.forEach(addAction);
      syncVisibility();
      return builderReady.then((conditions) => {
        $("#wf-filter").value = w.filter_text || "";
        conditions.loadFilter(w.filter, w.filter_text);
        if (w.trigger.type === "event") conditions.loadWhere(w.trigger.where);
      });
    }).catch(showError);
  } else {
    addAction();
    syncVisibility();
  }
})();
