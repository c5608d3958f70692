// The Webhooks page: create, enable/disable and delete through /v1/webhooks
// (signed in by the session cookie, with Sift-UI: 1), and the status, lag
// and last error of each row refreshed every few seconds while the page is
// visible. No dependencies.
"use strict";

(function webhooks() {
  const form = document.getElementById("create-webhook");
  if (!form) return;
  const formError = document.getElementById("webhook-error");
  const actionError = document.getElementById("webhook-action-error");

  async function call(method, path, body) {
    const response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Sift-UI": "1" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      const message = answer && answer.error ? answer.error.message : `The server answered ${response.status}.`;
      const field = answer && answer.error && answer.error.details ? answer.error.details.field : undefined;
      throw Object.assign(new Error(message), { field });
    }
    return answer;
  }

  document.getElementById("generate-secret").addEventListener("click", () => {
    const bytes = crypto.getRandomValues(new Uint8Array(24));
    form.elements.secret.value = "whsec_" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    form.elements.secret.focus();
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    formError.textContent = "";
    const checked = Array.from(form.querySelectorAll('input[name="segments"]:checked'), (c) => c.value);
    const body = {
      url: form.elements.url.value.trim(),
      secret: form.elements.secret.value,
      events: form.elements.events.checked,
    };
    if (checked.length) body.segments = checked;
    try {
      await call("POST", "/v1/webhooks", body);
      location.reload();
    } catch (error) {
      formError.textContent = error.message;
      const input = error.field && form.elements[error.field];
      if (input && input.focus) input.focus();
    }
  });

  const table = document.getElementById("webhooks");
  if (!table) return;

  table.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("tr[data-webhook-id]");
    const path = `/v1/webhooks/${encodeURIComponent(row.dataset.webhookId)}`;
    actionError.textContent = "";
    try {
      if (button.dataset.action === "delete") {
        const url = row.querySelector(".url").textContent;
        if (!confirm(`Delete the webhook to ${url}? Changes not yet delivered to it are dropped.`)) return;
        await call("DELETE", path);
      } else {
        await call("PATCH", path, { enabled: row.dataset.enabled !== "true" });
      }
      location.reload();
    } catch (error) {
      actionError.textContent = error.message;
    }
  });

  const labels = { idle: "OK", delivering: "Delivering", retrying: "Retrying", disabled: "Disabled" };
  function age(ms) {
    const s = Math.floor(ms / 1000);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h`;
    return `${Math.floor(s / 86400)} d`;
  }
  function lagWords(d) {
    if (!d.lag_seqs && !d.lag_events) return "Up to date";
    const parts = [];
    const plural = (n, one, many) => `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
    if (d.lag_seqs) parts.push(plural(d.lag_seqs, "change", "changes"));
    if (d.lag_events) parts.push(plural(d.lag_events, "event", "events"));
    return parts.join(", ") + (d.lag_ms >= 1000 ? ` · ${age(d.lag_ms)} behind` : "");
  }

  async function refresh() {
    if (document.visibilityState !== "visible") return;
    let list;
    try {
      list = await call("GET", "/v1/webhooks");
    } catch (error) {
      return; // signed out or server gone: the next reload will say
    }
    for (const hook of list.items) {
      const row = table.querySelector(`tr[data-webhook-id="${CSS.escape(hook.id)}"]`);
      if (!row) continue;
      const d = hook.delivery;
      const badge = row.querySelector(".status .badge");
      badge.dataset.status = d.status;
      badge.textContent = labels[d.status] || d.status;
      row.querySelector(".lag").textContent = lagWords(d);
      const cell = row.querySelector(".error");
      if (d.last_error) {
        const message = document.createElement("span");
        message.className = "message";
        message.textContent = d.last_error.message;
        const when = document.createElement("span");
        when.className = "muted";
        when.append(timeElement(d.last_error.at));
        cell.replaceChildren(message, " ", when);
      }
    }
  }
  setInterval(refresh, 5000);
  document.addEventListener("visibilitychange", refresh);
})();
