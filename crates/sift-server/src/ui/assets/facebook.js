// The Export to Facebook page (session cookie + Sift-UI: 1 on every call):
// - the Facebook account: PUT/DELETE /v1/facebook/connection saves the ad
//   account and token once (the token field is cleared; the page only shows
//   its last characters);
// - the export form: the audience is picked from GET /v1/facebook/audiences
//   (a page at a time, "Load more audiences") or created with
//   POST /v1/facebook/audiences; POST /v1/segments/{id}/exports/facebook
//   starts the job without a token (the saved one is used);
// - the job is followed over server-sent events from /ui/live/exports/{id}
//   (the job as GET /v1/exports/{id} answers it) until it ends; a failed
//   one says why and POST /v1/exports/{id}/retry starts it again.
// Every message shown is in words: the API's messages name JSON keys, so
// errors are said from the field at fault or the error code. No dependencies.
"use strict";

(function facebook() {
  const form = document.getElementById("facebook-form");
  if (!form) return;
  const segmentId = form.dataset.segmentId;
  const $ = (id) => document.getElementById(id);
  const error = $("facebook-error");
  const status = $("facebook-status");
  const stop = $("facebook-stop");
  const retry = $("facebook-retry");
  const audience = $("facebook-audience");
  const audiencesStatus = $("facebook-audiences-status");
  const connection = $("facebook-connection");
  const connectionForm = $("facebook-connection-form");
  const connectionError = $("facebook-connection-error");
  const numbers = new Intl.NumberFormat("en-US");
  const audienceNames = new Map();
  let following = null;
  let source = null;
  let nextCursor = null;
  addEventListener("pagehide", () => source && source.close());

  // What a field at fault means, for the person filling the form.
  const FIELD_WORDS = {
    audience_id: "Choose an audience, or create a new one.",
    identifiers: "Choose at least one way to match people besides Contact id.",
    access_token: "Enter the access token (it needs the ads_management permission).",
    ad_account_id: "Enter the ad account id as Ads Manager shows it, like act_1234567890.",
    version: "The Graph API version looks like v21.0.",
    name: "Give the new audience a name (at most 200 characters).",
    description: "The description can be at most 1,000 characters.",
  };
  const CODE_WORDS = {
    facebook_not_connected: "Connect a Facebook ad account first (Facebook account, above).",
    export_not_failed: "This export did not fail, so there is nothing to retry.",
    not_found: "This export or its segment no longer exists. Reload the page.",
    unauthorized: "Your session has ended. Sign in again.",
  };
  const LABELS = { graph_url: "The Graph URL", audience_id: "The audience", access_token: "The access token",
    ad_account_id: "The ad account id", version: "The Graph API version", name: "The name", description: "The description" };

  function words(answer, httpStatus) {
    const e = answer && answer.error;
    if (!e) return `Something went wrong (the server answered ${httpStatus}). Try again.`;
    const field = e.details && e.details.field;
    if (field && FIELD_WORDS[field]) return FIELD_WORDS[field];
    if (CODE_WORDS[e.code]) return CODE_WORDS[e.code];
    if (e.code === "internal") return "Something went wrong on the server. Try again; if it keeps failing, tell your administrator.";
    // Any quoted key left (a Graph URL the server refuses, say) is named in words.
    return String(e.message).replace(/"(\w+)"/g, (whole, key) => LABELS[key] || whole);
  }

  async function call(method, path, body) {
    const response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Sift-UI": "1" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      const field = answer && answer.error && answer.error.details ? answer.error.details.field : undefined;
      throw Object.assign(new Error(words(answer, response.status)), { field, code: answer && answer.error && answer.error.code });
    }
    return answer;
  }

  const plural = (n, one, many) => `${numbers.format(n)} ${n === 1 ? one : many}`;

  function stateWords(job) {
    switch (job.state) {
      case "queued": return "Waiting to start";
      case "running": return job.phase === "syncing" ? "Keeping in sync" : "Sending";
      case "done": return job.phase === "stopped" ? "Stopped" : "Done";
      case "failed": return "Failed";
      default: return "Unknown";
    }
  }

  // Why a failed job failed: its last error, without the batch it happened in.
  function reason(job) {
    const last = job.errors && job.errors[job.errors.length - 1];
    if (!last) return "";
    let text = last.message;
    const m = text.match(/^batch \d+ \([^)]*\): (.*)$/s);
    if (m) text = m[1];
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  // "batch 2 (POST, 300 rows), attempt 1: …" as "Batch 2 (adding 300 people), attempt 1: …".
  function logWords(message) {
    return message.replace(/^batch (\d+) \((POST|DELETE)(?:, (\d+) rows)?\)/, (whole, n, method, rows) => {
      const verb = method === "DELETE" ? "removing" : "adding";
      return `Batch ${n} (${rows ? `${verb} ${plural(Number(rows), "person", "people")}` : verb})`;
    });
  }

  function when(iso) {
    const at = new Date(iso);
    if (Number.isNaN(at.getTime())) return iso;
    const seconds = Math.round((at.getTime() - Date.now()) / 1000);
    if (Math.abs(seconds) < 10) return "just now";
    const rtf = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
    const steps = [[60, "second"], [3600, "minute"], [86400, "hour"], [86400 * 7, "day"]];
    for (let i = 0; i < steps.length; i++) {
      const [limit, unit] = steps[i];
      if (Math.abs(seconds) < limit) {
        const size = i === 0 ? 1 : steps[i - 1][0];
        return rtf.format(Math.round(seconds / size), unit);
      }
    }
    return at.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
  }

  function audienceName(id) {
    return audienceNames.get(id) || `audience ${id}`;
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "–" : String(text);
    return row.appendChild(td);
  }

  function button(text, data) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    Object.assign(b.dataset, data);
    return b;
  }

  // The job's row in the segment's list of exports, added when missing.
  function listed(job) {
    const table = $("facebook-jobs");
    let row = table.querySelector(`tr[data-export-id="${CSS.escape(job.id)}"]`);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.exportId = job.id;
      const started = document.createElement("time");
      started.dateTime = job.created_at;
      started.title = job.created_at;
      row.appendChild(document.createElement("td")).appendChild(started);
      const aud = cell(row, "");
      aud.className = "audience";
      aud.dataset.audienceId = job.audience_id;
      for (const name of ["state", "sent", "skipped"]) cell(row, "").className = name;
      const actions = row.appendChild(document.createElement("td"));
      actions.className = "row-actions";
      actions.appendChild(button("Show", { follow: job.id }));
      table.tBodies[0].prepend(row);
      table.hidden = false;
      $("facebook-no-jobs").hidden = true;
    }
    row.dataset.state = job.state;
    if (job.retry_of) row.dataset.retryOf = job.retry_of;
    row.querySelector("time").textContent = when(job.created_at);
    const name = document.createElement("span");
    name.className = "audience-name";
    name.textContent = audienceName(job.audience_id);
    row.querySelector(".audience").replaceChildren(name, job.sync ? " (kept in sync)" : "");
    const state = row.querySelector(".state");
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.dataset.state = job.state;
    badge.textContent = stateWords(job);
    state.replaceChildren(badge);
    if (job.state === "failed" && reason(job)) {
      const p = document.createElement("p");
      p.className = "reason";
      p.textContent = reason(job);
      state.appendChild(p);
    }
    row.querySelector(".sent").textContent = numbers.format(job.sent);
    row.querySelector(".skipped").textContent = numbers.format(job.skipped);
    const actions = row.querySelector(".row-actions");
    const retryButton = actions.querySelector("button[data-retry]");
    if (job.state === "failed" && !retryButton && !retried(job.id)) {
      actions.append(" ", button("Retry", { retry: job.id }));
    } else if (job.state !== "failed" && retryButton) {
      retryButton.remove();
    }
    if (job.retry_of) {
      const old = document.querySelector(`#facebook-jobs tr[data-export-id="${CSS.escape(job.retry_of)}"] .row-actions`);
      const offered = old && old.querySelector("button[data-retry]");
      if (offered) {
        const note = document.createElement("span");
        note.className = "muted retried";
        note.textContent = "Retried";
        offered.replaceWith(note);
      }
    }
  }

  function retried(id) {
    return [...document.querySelectorAll("#facebook-jobs tr[data-export-id]")].some((r) => r.dataset.retryOf === id);
  }

  function show(job) {
    listed(job);
    status.hidden = false;
    status.dataset.jobId = job.id;
    status.dataset.state = job.state;
    $("facebook-job-audience").textContent = audienceName(job.audience_id);
    $("facebook-job-started").textContent = `started ${when(job.created_at)}` + (job.retry_of ? " (a retry)" : "");
    const state = $("facebook-state");
    state.textContent = stateWords(job);
    state.dataset.state = job.state;
    const why = $("facebook-reason");
    why.textContent = job.state === "failed" ? reason(job) : "";
    why.hidden = !why.textContent;
    retry.hidden = !(job.state === "failed" && !retried(job.id));
    const progress = $("facebook-progress");
    progress.max = Math.max(job.total, 1);
    progress.value = Math.min(job.sent + job.skipped, progress.max);
    const counts = $("facebook-counts");
    counts.dataset.sent = job.sent;
    counts.dataset.total = job.total;
    counts.dataset.skipped = job.skipped;
    counts.dataset.removed = job.removed;
    counts.textContent = `Sent ${numbers.format(job.sent)} of ${plural(job.total, "member", "members")} · skipped ${numbers.format(job.skipped)}` +
      (job.unsubscribed ? ` (${numbers.format(job.unsubscribed)} unsubscribed)` : "") +
      (job.sync ? ` · removed ${numbers.format(job.removed)}` : "") +
      ` · ${plural(job.batch_count, "batch", "batches")}, Facebook received ${numbers.format(job.num_received)}, invalid ${numbers.format(job.num_invalid_entries)}`;
    stop.hidden = !(job.sync && job.state === "running");
    const tbody = document.querySelector("#facebook-batches tbody");
    tbody.replaceChildren();
    for (const b of job.batches.slice().reverse()) {
      const tr = document.createElement("tr");
      tr.dataset.batch = b.n;
      const action = b.method === "DELETE" ? "Remove" : "Add";
      const answer = b.status === null || b.status === undefined ? "no answer" : b.status >= 200 && b.status < 300 ? "accepted" : `refused (${b.status})`;
      for (const v of [b.n, action, numbers.format(b.rows), answer, b.num_received, b.num_invalid_entries, b.attempts]) cell(tr, v);
      tbody.appendChild(tr);
    }
    const errors = $("facebook-errors");
    errors.replaceChildren();
    for (const e of job.errors) {
      const li = document.createElement("li");
      li.textContent = `${when(e.at)}: ${logWords(e.message)}`;
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

  // --- The Facebook account ---------------------------------------------------------

  function connected(c) {
    connection.dataset.connected = String(c.connected);
    $("facebook-connected").hidden = !c.connected;
    $("facebook-connected-actions").hidden = !c.connected;
    connectionForm.hidden = c.connected;
    $("facebook-cancel-change").hidden = !c.connected;
    $("facebook-export-fields").disabled = !c.connected;
    $("facebook-needs-connection").hidden = c.connected;
    if (c.connected) {
      $("facebook-account").textContent = `act_${c.ad_account_id}`;
      $("facebook-token-hint").textContent = `…${c.token_hint}`;
    }
  }

  connectionForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    connectionError.textContent = "";
    const f = connectionForm.elements;
    const body = { ad_account_id: f.ad_account_id.value.trim(), access_token: f.access_token.value.trim() };
    if (!body.ad_account_id) return fail(f.ad_account_id, FIELD_WORDS.ad_account_id);
    if (!body.access_token) return fail(f.access_token, FIELD_WORDS.access_token);
    const graphUrl = f.graph_url.value.trim();
    const version = f.version.value.trim();
    if (graphUrl) body.graph_url = graphUrl;
    if (version) body.version = version;
    const save = connectionForm.querySelector('button[type="submit"]');
    save.disabled = true;
    connectionError.textContent = "";
    audiencesStatus.textContent = "";
    try {
      const c = await call("PUT", "/v1/facebook/connection", body);
      f.access_token.value = "";
      connected(c);
      await loadAudiences(true);
    } catch (err) {
      fail(err.field && f[err.field], err.message);
    } finally {
      save.disabled = false;
    }
    function fail(field, message) {
      connectionError.textContent = message;
      if (field && field.focus) field.focus();
    }
  });

  $("facebook-change").addEventListener("click", () => {
    connectionForm.hidden = false;
    connectionForm.elements.access_token.focus();
  });
  $("facebook-cancel-change").addEventListener("click", () => {
    connectionForm.hidden = true;
    connectionForm.elements.access_token.value = "";
    connectionError.textContent = "";
  });
  $("facebook-disconnect").addEventListener("click", async () => {
    try {
      connected(await call("DELETE", "/v1/facebook/connection"));
      connectionForm.elements.ad_account_id.value = "";
      clearAudiences();
      audiencesStatus.textContent = "";
    } catch (err) {
      connectionError.textContent = err.message;
    }
  });

  // --- Audiences -----------------------------------------------------------------------

  const createOption = () => audience.querySelector('option[value="new"]');

  function clearAudiences() {
    for (const o of [...audience.options]) if (o.value !== "" && o.value !== "new") o.remove();
    audienceNames.clear();
    nextCursor = null;
    $("facebook-more").hidden = true;
  }

  function size(a) {
    const lo = a.approximate_count_lower_bound;
    const hi = a.approximate_count_upper_bound;
    if (lo === null || lo === undefined) return "size not known yet";
    if (hi === null || hi === undefined || hi === lo) return `about ${plural(lo, "person", "people")}`;
    return `${numbers.format(lo)}–${numbers.format(hi)} people`;
  }

  function addAudience(a) {
    audienceNames.set(a.id, a.name);
    const o = document.createElement("option");
    o.value = a.id;
    o.textContent = `${a.name} — ${size(a)}`;
    audience.insertBefore(o, createOption());
    return o;
  }

  function renameListed() {
    for (const td of document.querySelectorAll("#facebook-jobs td.audience[data-audience-id]")) {
      const name = audienceNames.get(td.dataset.audienceId);
      const shown = td.querySelector(".audience-name");
      if (name && shown) shown.textContent = name;
    }
  }

  async function loadAudiences(fresh) {
    if (fresh) clearAudiences();
    audiencesStatus.textContent = "Loading the ad account's audiences…";
    const more = $("facebook-more");
    more.disabled = true;
    try {
      const query = nextCursor ? `?cursor=${encodeURIComponent(nextCursor)}` : "";
      const page = await call("GET", `/v1/facebook/audiences${query}`);
      for (const a of page.items) addAudience(a);
      nextCursor = page.next_cursor;
      more.hidden = !nextCursor;
      const n = audience.options.length - 2;
      audiencesStatus.textContent = n === 0
        ? "This ad account has no audiences yet: create one."
        : `${plural(n, "audience", "audiences")}${nextCursor ? " so far" : ""} in this ad account.`;
      renameListed();
    } catch (err) {
      audiencesStatus.textContent = `The audiences could not be listed: ${err.message}`;
    } finally {
      more.disabled = false;
    }
  }

  $("facebook-more").addEventListener("click", () => loadAudiences(false));

  audience.addEventListener("change", () => {
    const creating = audience.value === "new";
    $("facebook-new-audience").hidden = !creating;
    if (creating) $("new_audience_name").focus();
  });

  $("facebook-create").addEventListener("click", async () => {
    error.textContent = "";
    const name = $("new_audience_name").value.trim();
    const description = $("new_audience_description").value.trim();
    if (!name) {
      error.textContent = FIELD_WORDS.name;
      $("new_audience_name").focus();
      return;
    }
    const create = $("facebook-create");
    create.disabled = true;
    try {
      const a = await call("POST", "/v1/facebook/audiences", description ? { name, description } : { name });
      addAudience(a).selected = true;
      $("facebook-new-audience").hidden = true;
      audiencesStatus.textContent = `Created the audience “${a.name}”: it is chosen for this export.`;
    } catch (err) {
      error.textContent = err.message;
    } finally {
      create.disabled = false;
    }
  });

  // --- Exports -------------------------------------------------------------------------

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    if (!audience.value || audience.value === "new") {
      error.textContent = audience.value === "new" ? "Create the new audience first (Create audience), or choose one from the list." : FIELD_WORDS.audience_id;
      audience.focus();
      return;
    }
    const identifiers = Array.from(form.querySelectorAll('input[name="identifiers"]:checked'), (c) => c.value.split(" ")).flat();
    if (!identifiers.some((k) => k !== "EXTERN_ID")) {
      error.textContent = FIELD_WORDS.identifiers;
      form.querySelector('input[name="identifiers"]').focus();
      return;
    }
    const body = { audience_id: audience.value, identifiers, sync: form.elements.sync.checked };
    try {
      const job = await call("POST", `/v1/segments/${encodeURIComponent(segmentId)}/exports/facebook`, body);
      show(job);
      follow(job.id);
    } catch (err) {
      error.textContent = err.message;
      if (err.field === "audience_id") audience.focus();
    }
  });

  async function startAgain(id) {
    error.textContent = "";
    try {
      const job = await call("POST", `/v1/exports/${encodeURIComponent(id)}/retry`);
      show(job);
      follow(job.id);
      status.scrollIntoView({ block: "nearest" });
    } catch (err) {
      error.textContent = err.message;
    }
  }

  retry.addEventListener("click", () => status.dataset.jobId && startAgain(status.dataset.jobId));

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
    const showButton = e.target.closest("button[data-follow]");
    if (showButton) follow(showButton.dataset.follow);
    const retryButton = e.target.closest("button[data-retry]");
    if (retryButton) startAgain(retryButton.dataset.retry);
  });

  for (const t of document.querySelectorAll("#facebook-jobs time[datetime]")) t.textContent = when(t.dateTime);
  if (connection.dataset.connected === "true") loadAudiences(true);
})();
