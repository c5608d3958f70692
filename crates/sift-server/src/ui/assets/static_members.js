// Static segments filled by hand (static_members.rs): on the segment page,
// "Add contacts" matches pasted ids or emails, or a CSV file's column, with
// POST /v1/segments/{id}/contacts:match and shows what matched before
// "Apply" adds them; on its contacts page, checked members are removed
// after a confirmation. The CSV is sent to the server as text, which reads
// it (quotes and all). No dependencies.
"use strict";

(function staticMembers() {
  const BATCH = 10000; // the API's bound on values and contact ids per request
  const fmt = (n) => Number(n).toLocaleString("en-US");
  const plural = (n, one, many) => `${fmt(n)} ${n === 1 ? one : many}`;

  async function call(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Sift-UI": "1" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (_) {
      throw new Error("Could not reach the server. Check the connection and try again.");
    }
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error(answer && answer.error ? answer.error.message : `The server answered ${response.status}.`);
    }
    return answer;
  }

  // -- Add contacts (the segment page) ------------------------------------------

  const card = document.getElementById("add-contacts");
  if (card) {
    const segmentId = card.dataset.segmentId;
    const maxBytes = Number(card.dataset.maxBytes) || 5 * 1024 * 1024;
    const form = document.getElementById("add-form");
    const textarea = document.getElementById("add-values");
    const fileInput = document.getElementById("add-file");
    const csvOptions = document.getElementById("add-csv-options");
    const headerBox = document.getElementById("add-header");
    const columnSelect = document.getElementById("add-column");
    const error = document.getElementById("add-error");
    const previewButton = document.getElementById("add-preview-button");
    const preview = document.getElementById("add-preview");
    const summary = document.getElementById("add-summary");
    const unknownWrap = document.getElementById("add-unknown-wrap");
    const unknownList = document.getElementById("add-unknown");
    const apply = document.getElementById("add-apply");
    const discard = document.getElementById("add-discard");
    let csvText = null; // the chosen file's text
    let csvChoice = {}; // header and column, once the person picks them
    let toAdd = []; // contact ids the preview found

    const clearPreview = () => {
      preview.hidden = true;
      toAdd = [];
    };
    const fail = (message, control) => {
      error.textContent = message;
      if (control) control.focus();
    };

    textarea.addEventListener("input", () => {
      if (csvText !== null) {
        csvText = null;
        fileInput.value = "";
        csvOptions.hidden = true;
      }
      clearPreview();
    });

    fileInput.addEventListener("change", async () => {
      error.textContent = "";
      clearPreview();
      csvText = null;
      csvChoice = {};
      csvOptions.hidden = true;
      const file = fileInput.files && fileInput.files[0];
      if (!file) return;
      if (file.size > maxBytes) {
        fileInput.value = "";
        fail(`The file is ${(file.size / 1048576).toFixed(1)} MB; files up to ${fmt(maxBytes / 1048576)} MB can be added (split it in parts).`, fileInput);
        return;
      }
      try {
        csvText = await file.text();
      } catch (_) {
        fail("The file could not be read. Choose it again.", fileInput);
        return;
      }
      textarea.value = "";
      runPreview();
    });

    headerBox.addEventListener("change", () => {
      csvChoice = { header: headerBox.checked };
      runPreview();
    });
    columnSelect.addEventListener("change", () => {
      csvChoice = { header: headerBox.checked, column: Number(columnSelect.value) };
      runPreview();
    });

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      runPreview();
    });

    function pastedValues() {
      return textarea.value.split(/[\r\n,;\t]+/).map((v) => v.trim()).filter((v) => v !== "");
    }

    async function runPreview() {
      error.textContent = "";
      clearPreview();
      let body;
      if (csvText !== null) {
        body = Object.assign({ csv: csvText }, csvChoice);
      } else {
        const values = pastedValues();
        if (!values.length) {
          fail("Paste contact ids or emails, or choose a CSV file.", textarea);
          return;
        }
        if (values.length > BATCH) {
          fail(`That is ${fmt(values.length)} values; add at most ${fmt(BATCH)} at a time.`, textarea);
          return;
        }
        body = { values };
      }
      previewButton.disabled = true;
      let answer;
      try {
        answer = await call("POST", `/v1/segments/${encodeURIComponent(segmentId)}/contacts:match`, body);
      } catch (err) {
        fail(err.message, csvText !== null ? fileInput : textarea);
        return;
      } finally {
        previewButton.disabled = false;
      }
      show(answer);
    }

    function show(answer) {
      if (answer.columns) {
        csvOptions.hidden = false;
        headerBox.checked = answer.header;
        columnSelect.replaceChildren(...answer.columns.map((name, i) => {
          const option = document.createElement("option");
          option.value = String(i + 1);
          option.textContent = name;
          return option;
        }));
        columnSelect.value = String(answer.column);
      }
      const ids = [...new Set(answer.matched.map((m) => m.contact_id))];
      const fresh = answer.contacts - answer.already_members;
      toAdd = ids;
      preview.dataset.values = answer.values;
      preview.dataset.contacts = answer.contacts;
      preview.dataset.unknown = answer.unknown.length;
      preview.dataset.already = answer.already_members;
      preview.dataset.new = fresh;
      const parts = [`${plural(answer.values, "value", "values")} read`];
      parts.push(`${plural(answer.contacts, "contact", "contacts")} found`);
      if (answer.already_members) parts.push(`${fmt(answer.already_members)} already in the segment`);
      parts.push(`${fmt(answer.unknown.length)} not found`);
      if (answer.duplicates) parts.push(`${plural(answer.duplicates, "repeat", "repeats")} left out`);
      summary.textContent = parts.join(" · ");
      const shown = answer.unknown.slice(0, 50);
      unknownList.replaceChildren(...shown.map((value) => {
        const li = document.createElement("li");
        li.textContent = value;
        return li;
      }));
      if (answer.unknown.length > shown.length) {
        const li = document.createElement("li");
        li.className = "muted";
        li.textContent = `and ${fmt(answer.unknown.length - shown.length)} more`;
        unknownList.append(li);
      }
      unknownWrap.hidden = answer.unknown.length === 0;
      apply.disabled = fresh === 0;
      apply.textContent = fresh === 0 ? "Nothing to add" : `Add ${plural(fresh, "contact", "contacts")}`;
      preview.hidden = false;
    }

    apply.addEventListener("click", async () => {
      if (!toAdd.length) return;
      apply.disabled = true;
      error.textContent = "";
      let added = 0;
      try {
        for (let i = 0; i < toAdd.length; i += BATCH) {
          const answer = await call("POST", `/v1/segments/${encodeURIComponent(segmentId)}/contacts`, {
            contact_ids: toAdd.slice(i, i + BATCH),
          });
          added += answer.added;
        }
      } catch (err) {
        apply.disabled = false;
        fail(`${err.message}${added ? ` (${plural(added, "contact was", "contacts were")} added before this)` : ""}`, apply);
        return;
      }
      location.assign(`/ui/segments/${encodeURIComponent(segmentId)}?added=${added}`);
    });

    discard.addEventListener("click", () => {
      clearPreview();
      textarea.focus();
    });
  }

  // -- Remove members (the segment's contacts page) ------------------------------

  const members = document.getElementById("members-form");
  if (members) {
    const segmentId = members.dataset.segmentId;
    const name = members.dataset.segmentName;
    const removeButton = document.getElementById("remove-members");
    const selectAll = document.getElementById("select-all");
    const counter = document.getElementById("selected-count");
    const error = document.getElementById("remove-error");
    const boxes = () => Array.from(members.querySelectorAll("input.member-box"));
    const checked = () => boxes().filter((b) => b.checked);

    const update = () => {
      const n = checked().length;
      const all = boxes().length;
      removeButton.disabled = n === 0;
      counter.textContent = n === 0 ? "None selected" : `${fmt(n)} selected`;
      selectAll.checked = all > 0 && n === all;
      selectAll.indeterminate = n > 0 && n < all;
    };
    members.addEventListener("change", (event) => {
      if (event.target === selectAll) {
        for (const box of boxes()) box.checked = selectAll.checked;
      }
      update();
    });
    members.addEventListener("submit", (event) => event.preventDefault());
    removeButton.addEventListener("click", async () => {
      const ids = checked().map((b) => b.value);
      if (!ids.length) return;
      if (!window.confirm(`Remove ${plural(ids.length, "contact", "contacts")} from “${name}”? They stay in Sift; only their membership ends.`)) return;
      removeButton.disabled = true;
      error.textContent = "";
      let answer;
      try {
        answer = await call("DELETE", `/v1/segments/${encodeURIComponent(segmentId)}/contacts`, { contact_ids: ids });
      } catch (err) {
        error.textContent = err.message;
        update();
        return;
      }
      const params = new URLSearchParams(location.search);
      params.delete("cursor");
      params.set("removed", String(answer.removed));
      location.assign(`${location.pathname}?${params}`);
    });
    update();
  }
})();
