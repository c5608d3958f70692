// Sift's shared page behaviour: theme toggle, relative times, the segments
// list (search, sort, live sizes), the segment page (More menu, live size and
// changes) and the field declaration form. No dependencies.
"use strict";

(function theme() {
  const button = document.getElementById("theme-toggle");
  if (!button) return;
  const root = document.documentElement;
  const current = () =>
    root.dataset.theme || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
  const show = () => button.setAttribute("aria-pressed", String(current() === "dark"));
  show();
  button.addEventListener("click", () => {
    const next = current() === "dark" ? "light" : "dark";
    root.dataset.theme = next;
    try { localStorage.setItem("sift-theme", next); } catch (e) { /* not kept */ }
    show();
  });
})();

// On a narrow screen the header's navigation folds behind a "Menu" button.
(function navToggle() {
  const button = document.getElementById("nav-toggle");
  if (!button) return;
  const header = button.closest("header");
  button.addEventListener("click", () => {
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    header.classList.toggle("nav-open", open);
  });
})();

// Counts as people write them: 1,234,567 (the server renders the same).
function formatCount(n) {
  return Number(n).toLocaleString("en-US");
}

// "5 min ago" in the viewer's locale, the exact UTC instant in the tooltip.
function relative(iso) {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const seconds = Math.round((ms - Date.now()) / 1000);
  const fmt = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const steps = [[60, "second"], [60, "minute"], [24, "hour"], [30, "day"], [12, "month"], [Infinity, "year"]];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) return fmt.format(Math.round(value), unit);
    value /= size;
  }
  return iso;
}
function refreshTimes(root) {
  for (const t of (root || document).querySelectorAll("time[datetime]:not([data-date])")) {
    t.textContent = relative(t.getAttribute("datetime"));
  }
}
refreshTimes();
setInterval(() => refreshTimes(), 30000); // only re-words timestamps already on the page

function timeElement(iso) {
  const t = document.createElement("time");
  t.setAttribute("datetime", iso);
  t.title = iso;
  t.textContent = relative(iso);
  return t;
}

// An EventSource that shows whether it is connected on the page's live dots.
function live(url, handlers) {
  const source = new EventSource(url);
  const dots = document.querySelectorAll(".live-dot");
  source.onopen = () => dots.forEach((d) => { d.classList.remove("off"); d.title = "Live"; });
  source.onerror = () => dots.forEach((d) => { d.classList.add("off"); d.title = "Reconnecting…"; });
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (e) => handler(JSON.parse(e.data)));
  }
  addEventListener("pagehide", () => source.close());
  return source;
}

(function segmentsList() {
  const table = document.getElementById("segments");
  if (!table) return;
  const body = table.tBodies[0];
  const rows = () => Array.from(body.rows);
  const search = document.getElementById("segment-search");
  const counter = document.getElementById("segment-count");
  const noMatch = document.getElementById("no-match");
  const filter = () => {
    const needle = search.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows()) {
      const hit = row.dataset.name.includes(needle);
      row.hidden = !hit;
      if (hit) shown++;
    }
    counter.textContent = needle
      ? `${formatCount(shown)} of ${formatCount(rows().length)} segments`
      : `${formatCount(rows().length)} segments`;
    noMatch.hidden = shown > 0;
  };
  search.addEventListener("input", () => {
    filter();
    remember();
  });

  // Search and sort live in the address (?q=&sort=size&order=descending), so
  // a reload, a bookmark or the back button shows the same list.
  const remember = () => {
    const url = new URL(location.href);
    const q = search.value.trim();
    if (q) url.searchParams.set("q", q);
    else url.searchParams.delete("q");
    const th = table.querySelector("th[aria-sort]");
    const button = th && th.querySelector("button.sort");
    if (button && !(button.dataset.sort === "name" && th.getAttribute("aria-sort") === "ascending")) {
      url.searchParams.set("sort", button.dataset.sort);
      url.searchParams.set("order", th.getAttribute("aria-sort"));
    } else {
      url.searchParams.delete("sort");
      url.searchParams.delete("order");
    }
    history.replaceState(null, "", url);
  };

  const keys = {
    name: (r) => r.dataset.name,
    size: (r) => Number(r.dataset.size),
    updated: (r) => Number(r.dataset.updated),
  };
  const sortBy = (button, order) => {
    const th = button.closest("th");
    table.querySelectorAll("th[aria-sort]").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", order);
    const key = keys[button.dataset.sort];
    const sign = order === "ascending" ? 1 : -1;
    const sorted = rows().sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * sign);
    sorted.forEach((r) => body.appendChild(r));
  };
  for (const button of table.querySelectorAll("button.sort")) {
    button.addEventListener("click", () => {
      const th = button.closest("th");
      // Names sort A→Z first; sizes and dates biggest/newest first.
      const first = button.dataset.sort === "name" ? "ascending" : "descending";
      const order = th.getAttribute("aria-sort") === first
        ? (first === "ascending" ? "descending" : "ascending") : first;
      sortBy(button, order);
      remember();
    });
  }
  const params = new URLSearchParams(location.search);
  const saved = table.querySelector(`button.sort[data-sort="${CSS.escape(params.get("sort") || "")}"]`);
  if (saved && ["ascending", "descending"].includes(params.get("order"))) sortBy(saved, params.get("order"));
  if (params.get("q")) {
    search.value = params.get("q");
    filter();
  }

  live(table.dataset.live, {
    sizes(message) {
      for (const [id, size] of Object.entries(message.sizes)) {
        const row = body.querySelector(`tr[data-segment-id="${CSS.escape(id)}"]`);
        if (!row) {
          // Created elsewhere since this page was rendered.
          document.getElementById("segments-added").hidden = false;
          continue;
        }
        // Identify can move members from anonymous to known at equal size.
        const split = (message.split || {})[id];
        if (split) {
          row.querySelector(".size-known").textContent = formatCount(split[0]);
          row.querySelector(".size-anonymous").textContent = formatCount(split[1]);
        }
        if (row.dataset.size === String(size)) continue;
        row.dataset.size = String(size);
        row.dataset.updated = String(Date.parse(message.at));
        const cell = row.querySelector(".size");
        cell.textContent = formatCount(size);
        cell.classList.remove("bump");
        void cell.offsetWidth; // restart the highlight
        cell.classList.add("bump");
        const updated = row.querySelector(".updated");
        updated.replaceChildren(timeElement(message.at));
      }
    },
  });
})();

(function moreMenu() {
  const button = document.getElementById("more-button");
  const menu = document.getElementById("more-menu");
  if (!button || !menu) return;
  const items = () => Array.from(menu.querySelectorAll("a"));
  const open = (focusFirst) => {
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    if (focusFirst) items()[0].focus();
  };
  const close = () => {
    menu.hidden = true;
    button.setAttribute("aria-expanded", "false");
  };
  button.addEventListener("click", () => (menu.hidden ? open(false) : close()));
  button.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") { e.preventDefault(); open(true); }
  });
  menu.addEventListener("keydown", (e) => {
    const list = items();
    const at = list.indexOf(document.activeElement);
    if (e.key === "Escape") { close(); button.focus(); }
    if (e.key === "ArrowDown") { e.preventDefault(); list[(at + 1) % list.length].focus(); }
    if (e.key === "ArrowUp") { e.preventDefault(); list[(at - 1 + list.length) % list.length].focus(); }
  });
  document.addEventListener("click", (e) => {
    if (!menu.hidden && !menu.contains(e.target) && e.target !== button) close();
  });
  // A download (Export CSV) leaves the page where it is: close the menu.
  menu.addEventListener("click", (e) => {
    if (e.target.closest("a")) close();
  });
})();

(function segmentPage() {
  const list = document.getElementById("changes");
  const size = document.getElementById("segment-size");
  if (!list || !size) return;
  const empty = document.getElementById("no-changes");
  live(list.dataset.live, {
    segment(message) {
      size.textContent = formatCount(message.size);
      const known = document.getElementById("segment-size-known");
      const anonymous = document.getElementById("segment-size-anonymous");
      if (known && message.size_known !== undefined) known.textContent = formatCount(message.size_known);
      if (anonymous && message.size_anonymous !== undefined) anonymous.textContent = formatCount(message.size_anonymous);
      // Oldest first, so the newest ends on top.
      for (const change of message.changes.slice().reverse()) {
        if (list.querySelector(`li[data-seq="${change.seq}"]`)) continue;
        const li = document.createElement("li");
        li.dataset.seq = String(change.seq);
        li.className = `${change.change} fresh`;
        const link = document.createElement("a");
        link.href = `/ui/contacts/${encodeURIComponent(change.contact_id)}`;
        link.textContent = change.contact_id;
        const verb = document.createElement("strong");
        verb.textContent = change.change;
        const detail = document.createElement("span");
        detail.className = "muted";
        detail.append(`(${change.cause.replace(/_/g, " ")}) `, timeElement(change.at));
        li.append(link, " ", verb, " ", detail);
        list.prepend(li);
      }
      while (list.children.length > 100) list.lastElementChild.remove();
      if (empty && list.children.length) empty.hidden = true;
    },
  });
})();

(function declareField() {
  const form = document.getElementById("declare-field");
  if (!form) return;
  const error = document.getElementById("field-error");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const name = form.elements.name.value.trim();
    if (!/^[a-z][a-z0-9_]{0,63}$/.test(name)) {
      error.textContent = "A field name is a lower-case letter followed by up to 63 lower-case letters, digits or _.";
      form.elements.name.focus();
      return;
    }
    const body = { type: form.elements.type.value };
    const label = form.elements.label.value.trim();
    if (label) body.label = label;
    const response = await fetch(`/v1/fields/${encodeURIComponent(name)}`, {
      method: "PUT",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Sift-UI": "1" },
      body: JSON.stringify(body),
    });
    if (response.ok) {
      location.reload();
      return;
    }
    const answer = await response.json().catch(() => null);
    error.textContent = answer && answer.error ? answer.error.message : `The server answered ${response.status}.`;
  });
})();
