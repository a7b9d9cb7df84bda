// syncline console: the little script the server-rendered pages need. Every read and write goes to
// the service's /api with the session cookie (sent by the browser, unreadable here) and the page's
// CSRF token in x-csrf-token. No credential is ever stored in the browser.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

async function api(method, path, body) {
  const headers = { "x-csrf-token": csrf() };
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { ok: false, status: 0, data: { error: `the service did not answer (${e.message})` } };
  }
  if (response.status === 401) { location.href = "/login"; }
  const text = await response.text();
  let data;
  try { data = text ? JSON.parse(text) : {}; } catch { data = { error: text }; }
  return { ok: response.ok, status: response.status, data };
}

/// Text of an API error, with each problem of an invalid definition.
function problem(data) {
  const lines = [data.error ?? "failed"];
  for (const e of data.errors ?? []) lines.push(`• ${e}`);
  return lines.join("\n");
}

function show(element, text, kind) {
  if (!element) return;
  element.textContent = text;
  element.className = element.className.replace(/\b(ok|bad|busy)\b/g, "").trim() + (kind ? ` ${kind}` : "");
}

// ---- paths into a definition ("sourceConfig.endpoint") ----
function getPath(object, path) {
  return path.split(".").reduce((o, k) => (o && typeof o === "object" ? o[k] : undefined), object);
}

function setPath(object, path, value) {
  const keys = path.split(".");
  let here = object;
  for (const key of keys.slice(0, -1)) {
    if (typeof here[key] !== "object" || here[key] === null) here[key] = {};
    here = here[key];
  }
  const last = keys[keys.length - 1];
  if (value === undefined) delete here[last];
  else here[last] = value;
}

/// The definition as the form now says it: the stored body (so fields the form does not show are
/// kept) with each input written over it. An empty secret keeps the stored one (`***`).
function collect(form) {
  const original = document.getElementById("definition-body");
  const body = original ? JSON.parse(original.textContent || "{}") : {};
  for (const input of form.querySelectorAll("[data-path]")) {
    const box = input.closest("[data-kinds],[data-auth]");
    if (box && box.hidden) continue;
    const path = input.dataset.path;
    let value;
    switch (input.dataset.type) {
      case "bool": value = input.checked; break;
      case "secret": if (input.value === "") continue; value = input.value; break;
      case "lines": value = input.value.split("\n").map((l) => l.trim()).filter(Boolean); if (!value.length) value = undefined; break;
      case "json":
        try { value = JSON.parse(input.value); } catch (e) { throw new Error(`${input.labels[0]?.textContent ?? path}: not valid JSON (${e.message})`); }
        break;
      default: value = input.value.trim() === "" ? undefined : input.value.trim();
    }
    setPath(body, path, value);
    if (input.dataset.setsTargetType && value !== undefined && !body.target) body.targetType = input.dataset.setsTargetType;
  }
  if (form.dataset.kind === "mapping") Object.assign(body, mappingRows(form));
  if (form.dataset.kind === "synchronization") {
    const schedule = scheduleText();
    if (schedule === "manual" && body.schedule === undefined) delete body.schedule;
    else body.schedule = schedule;
  }
  return body;
}

// ---- mapping rows ----
function rows(table) {
  const out = {};
  for (const row of table.querySelectorAll("tbody tr.map-row")) {
    const field = row.querySelector(".field").value.trim();
    const input = row.querySelector(".template");
    if (!field) continue;
    out[field] = input.value;
    // A value that was not a string (a number, a nested map) is shown as JSON and saved as such.
    if (input.dataset.json) { try { out[field] = JSON.parse(input.value); } catch { /* edited into text: keep it as text */ } }
  }
  return out;
}

function mappingRows(root) {
  const casts = rows(document.getElementById("cast-rows"));
  const cast = {};
  for (const [field, text] of Object.entries(casts)) cast[field] = text.includes(",") ? text.split(",").map((c) => c.trim()) : text.trim();
  return { mapping: rows(document.getElementById("mapping-rows")), cast };
}

function markFieldError(message) {
  for (const row of document.querySelectorAll("#mapping-rows tr.map-row, #cast-rows tr.map-row")) {
    row.classList.remove("invalid");
    const input = row.querySelector(".template");
    input.removeAttribute("aria-invalid");
    const note = row.querySelector(".field-error");
    if (note) { note.hidden = true; note.textContent = ""; }
  }
  const found = /(?:field|cast of) `([^`]+)`/.exec(message ?? "");
  if (!found) return;
  for (const row of document.querySelectorAll("#mapping-rows tr.map-row, #cast-rows tr.map-row")) {
    if (row.querySelector(".field").value.trim() !== found[1]) continue;
    row.classList.add("invalid");
    const input = row.querySelector(".template");
    input.setAttribute("aria-invalid", "true");
    const note = row.querySelector(".field-error");
    if (note) { note.hidden = false; note.textContent = message; note.id = `error-${found[1]}`; input.setAttribute("aria-describedby", note.id); }
  }
}

async function testMapping() {
  const out = document.getElementById("mapping-result");
  const form = document.querySelector("form.definition");
  let input;
  try { input = JSON.parse(document.getElementById("sample").value || "{}"); } catch (e) {
    out.innerHTML = ""; const p = document.createElement("p"); p.className = "alert"; p.textContent = `The sample is not valid JSON: ${e.message}`; out.append(p); return;
  }
  const body = collect(form);
  const mapping = { mapping: body.mapping, cast: body.cast, unset: body.unset ?? [], passThrough: body.passThrough ?? false };
  const answer = await api("POST", "/api/mappings/test", { mapping, inputObject: input });
  out.innerHTML = "";
  if (answer.ok) {
    markFieldError(null);
    const h = document.createElement("h3"); h.textContent = "Result";
    const pre = document.createElement("pre"); pre.className = "ok-box"; pre.textContent = JSON.stringify(answer.data.result, null, 2);
    out.append(h, pre);
  } else {
    markFieldError(answer.data.error);
    const p = document.createElement("p"); p.className = "alert"; p.setAttribute("role", "alert"); p.textContent = problem(answer.data);
    out.append(p);
  }
}

async function fetchSample(button) {
  const source = document.getElementById("feed").value;
  button.disabled = true;
  const answer = await api("GET", `/api/sources/${encodeURIComponent(source)}/preview?limit=1`);
  button.disabled = false;
  const out = document.getElementById("mapping-result");
  const record = answer.ok && answer.data.ok !== false ? answer.data.records[0]?.record : undefined;
  if (record === undefined) {
    out.innerHTML = ""; const p = document.createElement("p"); p.className = "alert";
    p.textContent = answer.ok ? (answer.data.message ?? "the source gave no records") : problem(answer.data); out.append(p); return;
  }
  document.getElementById("sample").value = JSON.stringify(record, null, 2);
}

// ---- schedule ----
function scheduleText() {
  const kind = document.getElementById("f-schedule-kind")?.value ?? "manual";
  if (kind === "every") return `every ${Math.max(1, parseInt(document.getElementById("f-minutes").value || "15", 10))}m`;
  if (kind === "cron") return document.getElementById("f-cron").value.trim() || "manual";
  return kind;
}

function initSchedule() {
  const select = document.getElementById("f-schedule-kind");
  if (!select) return;
  const text = select.dataset.schedule.trim();
  const every = /^every\s+(\d+)\s*m$/.exec(text);
  if (["manual", "hourly", "daily"].includes(text)) select.value = text;
  else if (every) { select.value = "every"; document.getElementById("f-minutes").value = every[1]; }
  else if (text) { select.value = "cron"; document.getElementById("f-cron").value = text; }
  const sync = () => document.querySelectorAll("[data-schedule-part]").forEach((el) => { el.hidden = el.dataset.schedulePart !== select.value; });
  select.addEventListener("change", sync);
  sync();
}

// ---- source fields per connector type ----
function initKinds() {
  const type = document.getElementById("f-type");
  const auth = document.getElementById("f-auth");
  if (!type) return;
  const sync = () => {
    for (const el of document.querySelectorAll("[data-kinds]")) {
      const kindOk = el.dataset.kinds.split(" ").includes(type.value);
      // Auth-specific fields of an API source follow the auth choice; other kinds show theirs.
      const authOk = !el.dataset.auth || type.value !== "api" || (auth && auth.value === el.dataset.auth);
      el.hidden = !(kindOk && authOk);
    }
  };
  type.addEventListener("change", sync);
  auth?.addEventListener("change", sync);
  sync();
}

// ---- saving and deleting definitions ----
async function save(event) {
  event.preventDefault();
  const form = event.target;
  const status = form.querySelector(".form-status");
  let body;
  try { body = collect(form); } catch (e) { show(status, e.message, "bad"); return; }
  const section = form.dataset.section;
  const id = form.dataset.id;
  show(status, "Saving…", "busy");
  const answer = id ? await api("PUT", `/api/${section}/${encodeURIComponent(id)}`, body) : await api("POST", `/api/${section}`, body);
  if (!answer.ok) { show(status, problem(answer.data), "bad"); return; }
  if (!id) { location.href = `/${section}/${encodeURIComponent(answer.data.id)}?created=1`; return; }
  show(status, "Saved.", "ok");
  const stored = document.getElementById("definition-body");
  if (stored) {
    const kept = { ...answer.data };
    for (const k of ["id", "file", "running", "next_run"]) delete kept[k];
    stored.textContent = JSON.stringify(kept);
  }
  const next = document.getElementById("next-run");
  if (next && section === "synchronizations") next.textContent = answer.data.next_run ? `${answer.data.next_run.replace("T", " ").replace("Z", "")} UTC` : "—";
  for (const input of form.querySelectorAll('[data-type="secret"]')) {
    if (input.value) { input.value = ""; const state = input.labels[0]?.querySelector(".secret-state"); if (state) state.textContent = "(set)"; }
  }
}

async function deleteDefinition(button) {
  const { section, id } = button.dataset;
  if (!confirm(`Delete ${id}?`)) return;
  const answer = await api("DELETE", `/api/${section}/${encodeURIComponent(id)}`);
  if (answer.ok) location.href = `/${section}`;
  else alert(problem(answer.data));
}

// ---- source test and preview ----
async function testSource(button) {
  const out = document.getElementById("test-result");
  show(out, "Testing…", "busy");
  button.disabled = true;
  const answer = await api("POST", `/api/sources/${encodeURIComponent(button.dataset.id)}/test`);
  button.disabled = false;
  if (!answer.ok) show(out, `FAILED: ${problem(answer.data)}`, "bad");
  else if (answer.data.ok) show(out, `OK — ${answer.data.message}`, "ok");
  else show(out, `FAILED [${answer.data.category}] ${answer.data.message}`, "bad");
}

async function previewSource(button) {
  const out = document.getElementById("preview");
  out.textContent = "Reading…";
  const answer = await api("GET", `/api/sources/${encodeURIComponent(button.dataset.id)}/preview?limit=5`);
  out.innerHTML = "";
  if (!answer.ok || answer.data.ok === false) {
    const p = document.createElement("p"); p.className = "alert"; p.textContent = answer.ok ? answer.data.message : problem(answer.data); out.append(p); return;
  }
  if (!answer.data.records.length) { const p = document.createElement("p"); p.className = "empty"; p.textContent = "No records (check resultsPosition, the path or the query)."; out.append(p); return; }
  for (const record of answer.data.records) {
    const h = document.createElement("h3");
    h.textContent = record.id === null ? `${record.place}: NO id at idPosition` : `${record.place}, id ${record.id}`;
    const pre = document.createElement("pre"); pre.textContent = JSON.stringify(record.record, null, 2);
    out.append(h, pre);
  }
}

// ---- runs: start, follow, cancel ----
let following = null;

function progressText(job) {
  const n = (k) => job[k] ?? 0;
  const seconds = job.started_at ? Math.max(0.001, (Date.now() - Date.parse(job.started_at)) / 1000) : 0;
  const rate = seconds ? Math.round(n("entities_found") / seconds) : 0;
  return `Running… ${n("entities_found")} records, ${rate}/s — ${n("entities_inserted")} created, ${n("entities_updated")} updated, ${n("entities_unchanged")} unchanged, ${n("entities_deleted")} deleted, ${n("entities_failed")} failed`;
}

async function follow(jobId) {
  const status = document.getElementById("run-status");
  const cancel = document.getElementById("cancel-run");
  following = jobId;
  cancel.hidden = false;
  cancel.dataset.job = jobId;
  document.querySelectorAll('[data-action="run"]').forEach((b) => { b.disabled = true; });
  for (;;) {
    const answer = await api("GET", `/api/jobs/${jobId}`);
    if (!answer.ok) { show(status, problem(answer.data), "bad"); break; }
    const job = answer.data;
    if (job.status === "COMPLETED") {
      show(status, `Done — ${job.entities_inserted} created, ${job.entities_updated} updated, ${job.entities_failed} errors`, "ok");
      status.insertAdjacentHTML("beforeend", ` <a href="/jobs/${job.id}">job</a>`);
      break;
    }
    if (job.status === "FAILED") { show(status, `Failed — ${job.error ?? "see the job"}`, "bad"); status.insertAdjacentHTML("beforeend", ` <a href="/jobs/${job.id}">job</a>`); break; }
    if (job.status === "CANCELLED") { show(status, `Cancelled — ${job.entities_inserted} created, ${job.entities_updated} updated, ${job.entities_failed} errors`, "bad"); break; }
    show(status, job.status === "CANCELLING" ? "Cancelling…" : job.status === "PENDING" ? "Running… starting" : progressText(job), "busy");
    await new Promise((r) => setTimeout(r, 400));
  }
  following = null;
  cancel.hidden = true;
  await refreshRuns();
  document.querySelectorAll('[data-action="run"]').forEach((b) => { b.disabled = false; });
}

/// The page's list of last runs, rendered anew by the server once a run ends.
async function refreshRuns() {
  const runs = document.getElementById("runs");
  if (!runs) return;
  const response = await fetch(location.pathname, { credentials: "same-origin" });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("runs");
  if (fresh) runs.replaceWith(fresh);
}

async function run(button) {
  const status = document.getElementById("run-status");
  const force = button.dataset.force === "true";
  show(status, "Running…", "busy");
  const answer = await api("POST", `/api/synchronizations/${encodeURIComponent(button.dataset.id)}/run${force ? "?force_full_sync=true" : ""}`);
  if (!answer.ok) { show(status, problem(answer.data), "bad"); return; }
  follow(answer.data.id);
}

async function cancelRun(button) {
  const answer = await api("POST", `/api/jobs/${button.dataset.job}/cancel`);
  if (!answer.ok) show(document.getElementById("run-status"), problem(answer.data), "bad");
}

// ---- contracts ----
async function deleteContract(button) {
  const table = document.getElementById("contracts");
  const origin = button.dataset.origin;
  if (!confirm(`Delete the contract of origin id ${origin}? The next run creates that object again.`)) return;
  const answer = await api("DELETE", `/api/synchronizations/${encodeURIComponent(table.dataset.sync)}/contracts/${encodeURIComponent(origin)}`);
  const status = document.getElementById("contract-status");
  if (!answer.ok) { show(status, problem(answer.data), "bad"); return; }
  button.closest("tr").remove();
  show(status, `Contract ${origin} deleted: the next run creates that object again.`, "ok");
}

// ---- webhooks ----
async function redeliver(button) {
  const answer = await api("POST", `/api/webhooks/deliveries/${encodeURIComponent(button.dataset.id)}/redeliver`);
  const status = document.getElementById("delivery-status");
  if (!answer.ok) { show(status, problem(answer.data), "bad"); return; }
  button.closest("tr").querySelector(".badge").textContent = "pending";
  button.remove();
  show(status, `Delivery ${answer.data.id} is pending again.`, "ok");
}

// ---- wiring ----
const actions = {
  "test-source": testSource,
  "preview-source": previewSource,
  "delete-definition": deleteDefinition,
  "test-mapping": testMapping,
  "fetch-sample": fetchSample,
  "run": run,
  "cancel": cancelRun,
  "delete-contract": deleteContract,
  redeliver,
  "add-row": (button) => {
    const body = document.getElementById(button.dataset.target).querySelector("tbody");
    body.append(document.getElementById("row-template").content.cloneNode(true));
    body.lastElementChild.querySelector("input").focus();
  },
  "remove-row": (button) => button.closest("tr").remove(),
};

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-action]");
  if (button && actions[button.dataset.action]) { event.preventDefault(); actions[button.dataset.action](button); }
});

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form.definition").forEach((f) => f.addEventListener("submit", save));
  initKinds();
  initSchedule();
  const status = document.getElementById("run-status");
  if (status?.dataset.activeJob) follow(status.dataset.activeJob);
  if (new URLSearchParams(location.search).has("created")) show(document.querySelector(".form-status"), "Created.", "ok");
});
