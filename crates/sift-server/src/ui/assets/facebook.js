// The Export to Facebook page: starts an export through
// POST /v1/segments/{id}/exports/facebook (session cookie + Sift-UI: 1) and
// follows the job over server-sent events from /ui/live/exports/{id} (the
// job as GET /v1/exports/{id} answers it, after each change) until it ends.
// The token field is cleared once the job has started. No dependencies.
"use strict";

(function facebook() {
  const form = document.getElementById("facebook-form");
  if (!form) return;
  const segmentId = form.dataset.segmentId;
  const error = document.getElementById("facebook-error");
  const status = document.getElementById("facebook-status");
  const stop = document.getElementById("facebook-stop");
  let following = null;
  let source = null;
  addEventListener("pagehide", () => source && source.close());

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

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "–" : String(text);
    return row.appendChild(td);
  }

  // The job's row in the segment's list of exports, added when missing.
  function listed(job) {
    const table = document.getElementById("facebook-jobs");
    let row = table.querySelector(`tr[data-export-id="${CSS.escape(job.id)}"]`);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.exportId = job.id;
      const started = document.createElement("time");
      started.dateTime = job.created_at;
      started.textContent = job.created_at;
      row.appendChild(document.createElement("td")).appendChild(started);
      cell(row, job.audience_id + (job.sync ? " (sync)" : ""));
      for (const name of ["state", "sent", "skipped"]) cell(row, "").className = name;
      const show = document.createElement("button");
      show.type = "button";
      show.dataset.follow = job.id;
      show.textContent = "Show";
      row.appendChild(document.createElement("td")).appendChild(show);
      table.tBodies[0].prepend(row);
      table.hidden = false;
      document.getElementById("facebook-no-jobs").hidden = true;
    }
    row.dataset.state = job.state;
    row.querySelector(".state").textContent = job.state;
    row.querySelector(".sent").textContent = job.sent;
    row.querySelector(".skipped").textContent = job.skipped;
  }

  function show(job) {
    listed(job);
    status.hidden = false;
    status.dataset.jobId = job.id;
    status.dataset.state = job.state;
    document.getElementById("facebook-job-id").textContent = job.id;
    const state = document.getElementById("facebook-state");
    state.textContent = job.state;
    state.dataset.state = job.state;
    document.getElementById("facebook-phase").textContent = job.phase ? `(${job.phase})` : "";
    const progress = document.getElementById("facebook-progress");
    progress.max = Math.max(job.total, 1);
    progress.value = Math.min(job.sent + job.skipped, progress.max);
    const counts = document.getElementById("facebook-counts");
    counts.dataset.sent = job.sent;
    counts.dataset.total = job.total;
    counts.dataset.skipped = job.skipped;
    counts.dataset.removed = job.removed;
    counts.textContent = `Sent ${job.sent} of ${job.total} · skipped ${job.skipped}` +
      (job.unsubscribed ? ` (${job.unsubscribed} unsubscribed)` : "") +
      (job.sync ? ` · removed ${job.removed}` : "") +
      ` · ${job.batch_count} ${job.batch_count === 1 ? "batch" : "batches"}, Facebook received ${job.num_received}, invalid ${job.num_invalid_entries}`;
    stop.hidden = !(job.sync && job.state === "running");
    const tbody = document.querySelector("#facebook-batches tbody");
    tbody.replaceChildren();
    for (const b of job.batches.slice().reverse()) {
      const row = document.createElement("tr");
      row.dataset.batch = b.n;
      for (const v of [b.n, b.method, b.rows, b.status, b.num_received, b.num_invalid_entries, b.attempts]) cell(row, v);
      tbody.appendChild(row);
    }
    const errors = document.getElementById("facebook-errors");
    errors.replaceChildren();
    for (const e of job.errors) {
      const li = document.createElement("li");
      li.textContent = `${e.at}: ${e.message}`;
      errors.appendChild(li);
    }
  }

  function follow(id) {
    following = id;
    if (source) source.close();
    source = new EventSource(`/ui/live/exports/${encodeURIComponent(id)}`);
    const mine = source;
    source.addEventListener("job", (e) => {
      if (following !== id) return;
      const job = JSON.parse(e.data);
      show(job);
      if (job.state !== "queued" && job.state !== "running") mine.close();
    });
    // The browser reconnects by itself; a stream that cannot open at all
    // (the job is gone, the session ended) is said once.
    source.onerror = () => {
      if (mine.readyState === EventSource.CLOSED && following === id) {
        error.textContent = "Lost track of this export: reload the page to see where it stands.";
      }
    };
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const body = {
      audience_id: form.elements.audience_id.value.trim(),
      access_token: form.elements.access_token.value.trim(),
      identifiers: Array.from(form.querySelectorAll('input[name="identifiers"]:checked'), (c) => c.value),
      sync: form.elements.sync.checked,
    };
    const graphUrl = form.elements.graph_url.value.trim();
    const version = form.elements.version.value.trim();
    if (graphUrl) body.graph_url = graphUrl;
    if (version) body.version = version;
    try {
      const job = await call("POST", `/v1/segments/${encodeURIComponent(segmentId)}/exports/facebook`, body);
      form.elements.access_token.value = "";
      show(job);
      follow(job.id);
    } catch (err) {
      error.textContent = err.message;
      const field = err.field && form.elements[err.field];
      if (field && field.focus) field.focus();
    }
  });

  stop.addEventListener("click", async () => {
    if (!following) return;
    try {
      show(await call("DELETE", `/v1/exports/${encodeURIComponent(following)}`));
      follow(following);
    } catch (err) {
      error.textContent = err.message;
    }
  });

  document.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-follow]");
    if (button) follow(button.dataset.follow);
  });
})();
