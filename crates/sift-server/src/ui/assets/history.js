// A segment's past: the size-over-time chart on its page (plain SVG drawn
// from GET /v1/segments/{id}/sizes) and the Restore buttons of its history
// page (a PATCH with the revision's name, description and tree, which is a
// new revision). No dependencies.
"use strict";

(function () {
  const number = (n) => Number(n).toLocaleString("en-US");
  const SVG = "http://www.w3.org/2000/svg";
  const el = (name, attrs) => {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  };

  // -- the chart ----------------------------------------------------------
  const figure = document.getElementById("size-chart");
  if (figure) {
    const id = figure.dataset.segmentId;
    const tip = document.getElementById("chart-tip");
    const ranges = document.querySelectorAll("#chart-ranges button");
    const W = 640, TOP = 10, LINE_H = 130, BAND = 36, GAP = 14, LEFT = 56, RIGHT = 8;
    const H = TOP + LINE_H + GAP + 2 * BAND + 18;
    const dateOf = (iso, step) => {
      const d = new Date(iso);
      const opts = step === "1h"
        ? { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: "UTC" }
        : { month: "short", day: "numeric", year: "numeric", timeZone: "UTC" };
      return d.toLocaleString("en-US", opts) + (step === "1h" ? " UTC" : "");
    };
    const describe = (p, step) =>
      `${dateOf(p.at, step)}: ${number(p.size)} ${p.size === 1 ? "contact" : "contacts"}, ` +
      `${number(p.entered)} entered, ${number(p.exited)} exited`;

    const draw = (points, step, label) => {
      figure.replaceChildren();
      const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `Size over time, ${label}` });
      svg.classList.add("chart");
      const n = points.length;
      const width = W - LEFT - RIGHT;
      const x = (i) => LEFT + (n === 1 ? width / 2 : (i * width) / (n - 1));
      const maxSize = Math.max(1, ...points.map((p) => p.size));
      const y = (size) => TOP + LINE_H - (size / maxSize) * LINE_H;
      const maxMove = Math.max(1, ...points.map((p) => Math.max(p.entered, p.exited)));
      const base = TOP + LINE_H + GAP + BAND;
      // Axis labels: the largest size, zero, the first and last instants.
      const text = (x0, y0, content, anchor) => {
        const t = el("text", { x: x0, y: y0, "text-anchor": anchor || "end" });
        t.classList.add("axis");
        t.textContent = content;
        svg.appendChild(t);
      };
      text(LEFT - 6, TOP + 10, number(maxSize));
      text(LEFT - 6, TOP + LINE_H, "0");
      text(LEFT - 6, base - BAND + 10, "in");
      text(LEFT - 6, base + BAND, "out");
      text(LEFT, H - 2, dateOf(points[0].at, step), "start");
      text(W - RIGHT, H - 2, dateOf(points[n - 1].at, step), "end");
      svg.appendChild(el("line", { x1: LEFT, x2: W - RIGHT, y1: base, y2: base, class: "baseline" }));
      const slot = width / Math.max(1, n);
      const barW = Math.max(1, Math.min(18, slot * 0.6));
      points.forEach((p, i) => {
        const inH = (p.entered / maxMove) * BAND;
        const outH = (p.exited / maxMove) * BAND;
        if (inH > 0) svg.appendChild(el("rect", { x: x(i) - barW / 2, y: base - inH, width: barW, height: inH, class: "bar-entered" }));
        if (outH > 0) svg.appendChild(el("rect", { x: x(i) - barW / 2, y: base, width: barW, height: outH, class: "bar-exited" }));
      });
      const d = points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p.size).toFixed(1)}`).join("");
      svg.appendChild(el("path", { d, class: "size-line" }));
      const marker = el("circle", { r: 4, class: "marker", visibility: "hidden" });
      svg.appendChild(marker);
      // One invisible column per point catches the pointer and the keyboard.
      points.forEach((p, i) => {
        const hit = el("rect", {
          x: x(i) - slot / 2, y: 0, width: slot, height: H, class: "hit", tabindex: 0,
          "data-at": p.at, "data-size": p.size, "data-entered": p.entered, "data-exited": p.exited,
          "aria-label": describe(p, step),
        });
        const show = () => {
          tip.textContent = describe(p, step);
          marker.setAttribute("cx", x(i));
          marker.setAttribute("cy", y(p.size));
          marker.setAttribute("visibility", "visible");
        };
        hit.addEventListener("mouseenter", show);
        hit.addEventListener("focus", show);
        svg.appendChild(hit);
      });
      figure.appendChild(svg);
      const last = points[n - 1];
      tip.textContent = describe(last, step);
    };

    const load = async (button) => {
      for (const b of ranges) b.setAttribute("aria-pressed", String(b === button));
      const { step, steps } = button.dataset;
      const to = new Date();
      const hours = step === "1h" ? 1 : 24;
      const from = new Date(to.getTime() - Number(steps) * hours * 3600 * 1000);
      const url = `/v1/segments/${encodeURIComponent(id)}/sizes?step=${step}` +
        `&from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
      figure.setAttribute("aria-busy", "true");
      try {
        const res = await fetch(url, { credentials: "same-origin" });
        const body = await res.json();
        if (!res.ok) throw new Error(body.error ? body.error.message : res.statusText);
        draw(body.items, step, button.textContent.trim().toLowerCase());
      } catch (e) {
        tip.textContent = `The chart could not be loaded: ${e.message}`;
      } finally {
        figure.removeAttribute("aria-busy");
      }
    };
    for (const b of ranges) b.addEventListener("click", () => load(b));
    const initial = [...ranges].find((b) => b.getAttribute("aria-pressed") === "true") || ranges[0];
    if (initial) load(initial);
  }

  // -- restoring a revision -----------------------------------------------
  const list = document.getElementById("revisions");
  if (list) {
    const error = document.getElementById("restore-error");
    list.addEventListener("click", async (e) => {
      const button = e.target.closest("button[data-restore]");
      if (!button) return;
      const item = button.closest("li[data-revision]");
      const n = item.dataset.revision;
      if (!confirm(`Restore revision ${n}? The segment takes its name, description and condition again, as a new revision, and its members are recomputed.`)) return;
      const body = { name: item.dataset.name, description: item.dataset.description };
      if (item.dataset.conditionTree) body.condition_tree = JSON.parse(item.dataset.conditionTree);
      button.disabled = true;
      error.hidden = true;
      const id = list.dataset.segmentId;
      try {
        const res = await fetch(`/v1/segments/${encodeURIComponent(id)}`, {
          method: "PATCH",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "Sift-UI": "1" },
          body: JSON.stringify(body),
        });
        const saved = await res.json();
        if (!res.ok) throw new Error(saved.error ? saved.error.message : res.statusText);
        const ev = saved.evaluation || { entered: 0, exited: 0 };
        location.href = `/ui/segments/${encodeURIComponent(id)}?entered=${ev.entered}&exited=${ev.exited}&restored=${n}`;
      } catch (err) {
        error.textContent = `Revision ${n} could not be restored: ${err.message}`;
        error.hidden = false;
        button.disabled = false;
      }
    });
  }
})();
