// tiermem's web page: upload videos, follow their jobs, show each result (score, reasons, curve).
// Plain JavaScript on the /v1 API; nothing is loaded from elsewhere.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const POLL_MS = 700;
const PAGE_SIZE = 10;
let historyOffset = 0;
const picked = new Set();  // History rows picked for comparison, by job id

// The API key lives in this tab's session only, unless "remember on this device" is ticked.
const KEY_NAME = "tiermem-api-key";
function storedKey() { return sessionStorage.getItem(KEY_NAME) || localStorage.getItem(KEY_NAME) || ""; }
function apiKey() { return $("#api-key").value || storedKey(); }
function keepKey() {
  const key = $("#api-key").value;
  sessionStorage.setItem(KEY_NAME, key);
  if ($("#remember-key").checked && key) localStorage.setItem(KEY_NAME, key); else localStorage.removeItem(KEY_NAME);
}
let modelCard = null;  // the model card, once loaded: names the reference of a percentile

function headers() {
  const key = apiKey();
  return key ? { "X-API-Key": key } : {};
}

function showNotice(text) {
  const el = $("#notice");
  el.textContent = text;
  el.hidden = !text;
}

// One line in words from an error answer: FastAPI's {"detail": "..."} or a list of field errors.
function reason(status, body) {
  if (status === 401) { $("#key-box").hidden = false; }
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(-1)[0]}: ${d.msg}`).join("; ");
  return `the server answered ${status}`;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  let body = null;
  try { body = await res.json(); } catch (_) { body = null; }
  if (!res.ok) throw new ApiError(res.status, reason(res.status, body));
  return body;
}

let maxUploadBytes = Infinity;  // the server's --max-upload-mb, from /healthz
function announce(text) { $("#announce").textContent = text; }

async function frameUrl(jobId, seconds, width = 320) {
  const res = await fetch(`/v1/jobs/${jobId}/frame?t=${Math.max(0, seconds).toFixed(2)}&width=${width}`, { headers: headers() });
  if (!res.ok) return "";
  return URL.createObjectURL(await res.blob());
}

function pct(x) { return `${Math.round(x * 100)}`; }

// Facts of a video in plain words: objects, faces, actions, cuts, the frame prior.
function factWords(facts, timeline) {
  const words = [];
  const mid = facts.mid || {};
  if (mid.imagenet_top5 && mid.imagenet_top5.length) words.push(`objects: ${mid.imagenet_top5.slice(0, 3).map((o) => o.label).join(", ")}`);
  if (mid.frames_with_face) words.push(mid.frames_with_face.startsWith("0/") ? "no faces" : `faces in ${mid.frames_with_face} frames`);
  const high = facts.high || {};
  if (high.kinetics_top5 && high.kinetics_top5.length) words.push(`action: ${high.kinetics_top5[0].label || high.kinetics_top5[0]}`);
  const low = facts.low || {};
  if (low.cuts_at) words.push(`${low.cuts_at.length} cut${low.cuts_at.length === 1 ? "" : "s"}`);
  const prior = facts.prior || {};
  if (prior.prior_per_frame) words.push(`frame memorability ${prior.prior_per_frame.map((s) => s.toFixed(2)).join(", ")}`);
  if (timeline) {
    const changes = timeline.windows.map((w) => w.changes).filter(Boolean);
    if (changes.length) words.push(`changes: ${changes.slice(0, 4).join("; ")}${changes.length > 4 ? "; …" : ""}`);
  }
  return words.join(" · ") || "no facts for this model";
}

function drawContributions(root, contributions) {
  const bars = $(".bars", root);
  bars.replaceChildren();
  const entries = Object.entries(contributions || {}).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  if (!entries.length) { $(".contrib", root).hidden = true; return; }
  const top = Math.max(...entries.map(([, v]) => Math.abs(v)), 1e-9);
  for (const [tier, value] of entries) {
    const name = document.createElement("span");
    name.className = "tier";
    name.textContent = `${tier} ${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(3)}`;
    const track = document.createElement("span");
    track.className = "track";
    track.setAttribute("role", "img");
    track.setAttribute("aria-label", `${tier}: ${value >= 0 ? "raises" : "lowers"} the score by ${Math.abs(value).toFixed(3)}`);
    const fill = document.createElement("span");
    fill.className = `fill ${value >= 0 ? "up" : "down"}`;
    fill.style.width = `${(50 * Math.abs(value)) / top}%`;
    track.append(fill);
    bars.append(name, track);
  }
}

async function renderResult(root, job) {
  const status = $(".status", root);
  const work = $(".work", root);
  work.value = job.progress || 0;
  status.textContent = job.status === "queued" && job.queue_position ? `queued (#${job.queue_position})`
    : job.status === "running" ? runningWords(root, job.progress || 0) : job.status + (job.cached ? " (already scored)" : "");
  if (job.status === "failed") {
    const err = $(".error", root);
    err.textContent = job.error || "scoring failed";
    err.hidden = false;
  }
  const rec = job.result && job.result[0];
  if (!rec || root.dataset.rendered) return;
  root.dataset.rendered = "1";
  showActions(root, job);
  $(".upload", root).value = 1;
  $(".result", root).hidden = false;
  $(".score", root).textContent = rec.score.toFixed(3);
  $(".score", root).dataset.score = String(rec.score);
  const tl = rec.timeline;
  const many = tl && tl.windows.length > 1;
  $(".score-label", root).textContent = many ? `mean over ${tl.windows.length} windows of ${tl.summary.window_s} s`
    : tl ? `one window of ${tl.summary.window_s} s` : "one score for the whole video";
  $(".percentile", root).textContent = percentileWords(rec.percentile);
  let facts = rec.facts || {};
  let lead = "";
  if (tl && !Object.keys(facts).length && tl.windows.length) {  // a timeline: what its peak window shows
    const peak = tl.windows.find((w) => w.start === tl.summary.peak.start) || tl.windows[0];
    facts = peak.facts || {};
    lead = "at the peak: ";
  }
  $(".facts", root).textContent = lead + factWords(facts, tl);
  drawContributions(root, rec.contributions);
  const thumbAt = tl ? (tl.summary.peak.start + tl.summary.peak.end) / 2 : 0;
  $(".thumb", root).alt = `frame of ${job.filename} at ${thumbAt.toFixed(1)} s`;
  frameUrl(job.id, thumbAt).then((u) => { $(".thumb", root).src = u; });
  if (tl) drawTimeline(root, job, tl);
}

// Where a score stands, against a named reference; for zero-shot, why there is none and how to get one.
function percentileWords(percentile) {
  if (percentile != null) {
    const n = modelCard && modelCard.trained_on ? ` ${modelCard.trained_on.videos}` : "";
    return `More memorable than ${Math.round(percentile)}% of the model's${n} training videos (as the model scores them).`;
  }
  return "No norm to compare with: a zero-shot score has no reference set of videos. For one, fit a model on "
    + "videos with memorability scores (tiermem fit), or score a reference set of your own videos and compare against them.";
}

// "scoring 34% · about 40 s left": the time left from the pace so far (once 3% is done).
function runningWords(root, progress) {
  const now = Date.now() / 1000;
  if (!root.dataset.runningSince) root.dataset.runningSince = String(now);
  if (progress <= 0) return "starting (loading the model, opening the video)";
  if (!root.dataset.firstProgress) root.dataset.firstProgress = JSON.stringify([now, progress]);
  const [t0, p0] = JSON.parse(root.dataset.firstProgress);
  let words = `scoring ${pct(progress)}%`;
  if (progress - p0 >= 0.03 && now > t0) {
    const left = ((1 - progress) * (now - t0)) / (progress - p0);
    words += left < 60 ? ` · about ${Math.max(1, Math.round(left))} s left` : ` · about ${Math.round(left / 60)} min left`;
  }
  return words;
}

// A finished card's actions: its address to share, downloads, and deleting it.
function showActions(root, job) {
  const bar = $(".actions", root);
  bar.hidden = false;
  $(".share", root).href = `/jobs/${job.id}`;
  for (const format of ["csv", "json"]) {
    $(`.download-${format}`, root).onclick = () => download(job, format);
  }
  $(".delete", root).onclick = async () => {
    if (!window.confirm(`Delete the result for ${job.filename}?`)) return;
    try { await api(`/v1/jobs/${job.id}`, { method: "DELETE" }); } catch (e) { showNotice(e.message); return; }
    root.remove();
    if (location.pathname === `/jobs/${job.id}`) history.replaceState(null, "", "/");
    loadHistory();
  };
}

// Saves the job's export as a file (fetched with the key, when there is one).
async function download(job, format) {
  const res = await fetch(`/v1/jobs/${job.id}/export?format=${format}`, { headers: headers() });
  if (!res.ok) { showNotice(`download failed: the server answered ${res.status}`); return; }
  const name = (res.headers.get("content-disposition") || "").split('filename="')[1];
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await res.blob());
  a.download = name ? name.replace(/"$/, "") : `result.${format}`;
  document.body.append(a);
  a.click();
  a.remove();
}

// The card of a job by its id (the address /jobs/<id>, or a History row).
async function openJob(jobId) {
  const existing = document.querySelector(`.card[data-job="${CSS.escape(jobId)}"]`);
  if (existing) { existing.scrollIntoView(); return; }
  let job;
  try { job = await api(`/v1/jobs/${jobId}`); } catch (e) { showNotice(e.message); return; }
  follow(newCard(job.filename), job.id);
}

function newCard(name) {
  $("#empty").hidden = true;
  const root = $("#card-template").content.firstElementChild.cloneNode(true);
  $(".name", root).textContent = name;
  $("#cards").prepend(root);
  return root;
}

async function follow(root, jobId) {
  root.dataset.job = jobId;
  let misses = 0;
  for (;;) {
    let job = null;
    try { job = await api(`/v1/jobs/${jobId}`); misses = 0; } catch (e) {
      misses += 1;  // a network hiccup: try again a few times; a 401 or 404 will not change
      if (misses >= 5 || (e instanceof ApiError && (e.status === 401 || e.status === 404))) {
        const err = $(".error", root); err.textContent = e.message; err.hidden = false; return;
      }
    }
    if (job) {
      await renderResult(root, job);
      if (job.status === "done" || job.status === "failed") {
        announce(`${job.filename}: ${job.status === "done" ? "scored " + job.result[0].score.toFixed(3) : job.error}`);
        loadHistory();
        return;
      }
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function upload(file) {
  const root = newCard(file.name);
  const bar = $(".upload", root);
  if (file.size > maxUploadBytes) {  // refused before sending: the server would stop reading it
    const err = $(".error", root);
    err.textContent = `${file.name}: larger than the ${maxUploadBytes / 2 ** 20} MiB limit of this server`;
    err.hidden = false;
    $(".status", root).textContent = "refused";
    return;
  }
  $(".status", root).textContent = "uploading";
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("timeline", $("#timeline").value);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/jobs");
  for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
  xhr.onerror = () => { const err = $(".error", root); err.textContent = "the upload failed: the server could not be reached"; err.hidden = false; };
  xhr.onload = () => {
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch (_) { body = null; }
    if (xhr.status !== 202) {
      const err = $(".error", root);
      err.textContent = reason(xhr.status, body);
      err.hidden = false;
      $(".status", root).textContent = "refused";
      return;
    }
    bar.value = 1;
    follow(root, body.jobs[0].id);
  };
  xhr.send(form);
}

async function loadHistory() {
  let page;
  try { page = await api(`/v1/jobs?per_video=true&limit=${PAGE_SIZE}&offset=${historyOffset}`); } catch (e) { showNotice(e.message); return; }
  showNotice("");  // the key (if any) is right: an earlier refusal no longer stands
  const body = $("#history tbody");
  body.replaceChildren();
  for (const job of page.jobs) {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    const pick = document.createElement("input");
    pick.type = "checkbox";
    pick.className = "pick";
    pick.value = job.id;
    pick.checked = picked.has(job.id);
    pick.setAttribute("aria-label", `compare ${job.filename}`);
    pick.addEventListener("change", () => {
      if (pick.checked) picked.add(job.id); else picked.delete(job.id);
      $("#compare-picked").disabled = picked.size < 2;
    });
    name.append(pick, " ");
    const link = document.createElement("a");
    link.href = `/jobs/${job.id}`;
    link.textContent = job.filename;
    link.addEventListener("click", (ev) => { ev.preventDefault(); history.pushState(null, "", link.href); openJob(job.id); });
    name.append(link);
    if (job.submissions > 1) name.append(` (submitted ${job.submissions} times)`);
    const cells = [job.status + (job.error ? `: ${job.error}` : ""), "", new Date(job.created * 1000).toLocaleString()];
    tr.append(name, ...cells.map((text) => { const td = document.createElement("td"); td.textContent = text; return td; }));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `delete ${job.filename} and its results`);
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Delete ${job.filename} and its ${job.submissions} result(s)?`)) return;
      try { await api(`/v1/videos/${job.sha256}`, { method: "DELETE" }); } catch (e) { showNotice(e.message); return; }
      loadHistory();
    });
    const cell = document.createElement("td");
    cell.append(remove);
    tr.append(cell);
    body.append(tr);
    if (job.status === "done") {
      api(`/v1/jobs/${job.id}`).then((full) => { if (full.result && full.result[0]) tr.children[2].textContent = full.result[0].score.toFixed(3); }).catch(() => {});
    }
  }
  $("#page-info").textContent = page.total ? `${historyOffset + 1}–${historyOffset + page.jobs.length} of ${page.total} videos` : "no jobs yet";
  $("#newer").disabled = historyOffset === 0;
  $("#older").disabled = historyOffset + PAGE_SIZE >= page.total;
}

async function loadModelCard() {
  const box = $("#card-body");
  let card;
  try { card = await api("/v1/model"); modelCard = card; } catch (e) {
    box.textContent = e.message;
    if (e instanceof ApiError && e.status === 503) setTimeout(loadModelCard, 3000);  // still loading
    return;
  }
  const v = card.validation;
  const rows = [
    ["Model", `${card.name} (${card.kind})`],
    ["What the score is", card.statement],
    ["Trained on", card.trained_on ? `${card.trained_on.dataset || "a dataset"}: ${card.trained_on.videos} videos, target ${card.trained_on.target}` : "no video memorability data"],
    ["Validation", v ? `Spearman ${v.spearman.toFixed(3)} [95% CI ${v.spearman_95ci[0].toFixed(3)}, ${v.spearman_95ci[1].toFixed(3)}] on ${v.videos} videos` : "none"],
    ["Tiers", card.tiers.join(", ")],
    ["Window", `${card.window_seconds} s`],
    ["Licences", Object.entries(card.licences).map(([t, l]) => `${t}: ${l}`).join(" | ")],
  ];
  const dl = document.createElement("dl");
  for (const [k, val] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = val;
    dl.append(dt, dd);
  }
  box.replaceChildren(dl);
  box.classList.remove("muted");
}

function start() {
  $("#upload-form").addEventListener("submit", (e) => e.preventDefault());  // Enter in a field: no reload
  $("#api-key").value = storedKey();
  $("#remember-key").checked = Boolean(localStorage.getItem(KEY_NAME));
  const limits = () => fetch("/healthz", { headers: headers() }).then((r) => r.json())
    .then((h) => { if (h.max_upload_mb) maxUploadBytes = h.max_upload_mb * 2 ** 20; }).catch(() => {});
  $("#api-key").addEventListener("change", () => { keepKey(); limits(); loadHistory(); loadModelCard(); });
  $("#remember-key").addEventListener("change", keepKey);
  limits();
  $("#files").addEventListener("change", (e) => { for (const f of e.target.files) upload(f); e.target.value = ""; });
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); for (const f of e.dataTransfer.files) upload(f); });
  $("#compare-picked").addEventListener("click", () => compareJobs([...picked]));
  $("#newer").addEventListener("click", () => { historyOffset = Math.max(0, historyOffset - PAGE_SIZE); loadHistory(); });
  $("#older").addEventListener("click", () => { historyOffset += PAGE_SIZE; loadHistory(); });
  loadHistory();
  loadModelCard();
  const shared = location.pathname.match(/^\/jobs\/([^/]+)$/);
  if (shared) openJob(decodeURIComponent(shared[1]));
}

document.addEventListener("DOMContentLoaded", start);
