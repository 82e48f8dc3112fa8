// The memorability curve of a timeline: window scores against time on a stated scale, with
// time ticks, gridlines, the training median, the peak, trough and hook marked and named in a
// legend. Hovering (or the arrow keys) tells a window's score and shows its frame; a click (or
// Enter) opens the window: its frame, what pushed its score up or down, what changed there.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const MARKS = { peak: "peak (highest window)", trough: "trough (lowest window)", hook: "hook (opening window)" };

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

// Seconds between time ticks: every 5 s up to half a minute, every 10 s up to two minutes.
function timeStep(duration) { return duration <= 30 ? 5 : duration <= 120 ? 10 : duration <= 600 ? 60 : 300; }

// The score axis: the scores' range (and the median's) widened to whole twentieths, at least
// 0.2 wide and inside 0-1, so that small swings look small; gridlines every 0.05 or 0.1.
function scoreAxis(values) {
  let lo = Math.max(0, Math.floor((Math.min(...values) - 0.02) * 20) / 20);
  let hi = Math.min(1, Math.ceil((Math.max(...values) + 0.02) * 20) / 20);
  while (hi - lo < 0.2 - 1e-9) {
    if (lo > 0) lo = Math.max(0, lo - 0.05);
    if (hi - lo < 0.2 - 1e-9 && hi < 1) hi = Math.min(1, hi + 0.05);
  }
  const step = hi - lo > 0.4 + 1e-9 ? 0.1 : 0.05;
  const ticks = [];
  for (let k = Math.round(lo / step); k * step <= hi + 1e-9; k += 1) ticks.push(Math.round(k * step * 100) / 100);
  return { lo, hi, ticks };
}

function secondsText(t) { return `${Number(t.toFixed(1))} s`; }

// Draws the curve into the card `root` for the `timeline` of `job`; returns nothing. A single
// window is no curve: the card shows its one score instead.
function drawTimeline(root, job, timeline) {
  const fig = $(".timeline", root);
  const svg = $(".curve", root);
  const windows = timeline.windows;
  if (windows.length < 2) { fig.hidden = true; return; }
  fig.hidden = false;
  const W = Math.max(320, Math.round(svg.getBoundingClientRect().width) || 640), H = 200;
  const left = 40, right = 12, top = 10, bottom = 30;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const s = timeline.summary;
  const mids = windows.map((w) => (w.start + w.end) / 2);
  const scores = windows.map((w) => w.score);
  const axis = scoreAxis(s.training_median != null ? [...scores, s.training_median] : scores);
  const t0 = windows[0].start, t1 = windows[windows.length - 1].end;
  const x = (t) => left + ((t - t0) / Math.max(t1 - t0, 1e-9)) * (W - left - right);
  const y = (v) => H - bottom - ((v - axis.lo) / Math.max(axis.hi - axis.lo, 1e-9)) * (H - top - bottom);
  const label = (text, attrs) => { const t = svgEl("text", attrs); t.textContent = text; svg.append(t); };

  for (const v of axis.ticks) {  // gridlines and the score scale
    svg.append(svgEl("line", { class: "grid", x1: left, x2: W - right, y1: y(v), y2: y(v) }));
    label(v.toFixed(2), { class: "ytick", x: left - 4, y: y(v) + 4, "text-anchor": "end" });
  }
  const step = timeStep(t1 - t0);
  for (let t = Math.ceil(t0 / step) * step; t <= t1 + 1e-9; t += step) {
    svg.append(svgEl("line", { class: "tick", x1: x(t), x2: x(t), y1: H - bottom, y2: H - bottom + 4 }));
    label(`${t} s`, { class: "xtick", x: x(t), y: H - bottom + 16, "text-anchor": "middle" });
  }
  if (s.training_median != null) {
    svg.append(svgEl("line", { class: "median", x1: left, x2: W - right, y1: y(s.training_median), y2: y(s.training_median) }));
  }
  svg.append(svgEl("polyline", { class: "line", points: mids.map((m, i) => `${x(m).toFixed(1)},${y(scores[i]).toFixed(1)}`).join(" ") }));
  for (const key of ["hook", "trough", "peak"]) {
    const m = s[key], cx = x((m.start + m.end) / 2), cy = y(m.score);
    svg.append(key === "hook" ? svgEl("rect", { class: `mark ${key}`, x: cx - 5, y: cy - 5, width: 10, height: 10 })
      : svgEl("circle", { class: `mark ${key}`, cx, cy, r: 5.5 }));
  }
  const guide = svgEl("line", { class: "guide", x1: 0, x2: 0, y1: top, y2: H - bottom, visibility: "hidden" });
  const dot = svgEl("circle", { class: "focus", r: 4, cx: 0, cy: 0, visibility: "hidden" });
  svg.append(guide, dot);
  svg.setAttribute("aria-label", `Memorability over ${secondsText(t1)}, axis from ${axis.lo.toFixed(2)} to ${axis.hi.toFixed(2)}: `
    + `peak ${s.peak.score.toFixed(3)} at ${secondsText(s.peak.start)}, trough ${s.trough.score.toFixed(3)} at ${secondsText(s.trough.start)}`);

  drawLegend(root, s);
  const above = s.share_above_median != null ? `; above the training median ${Math.round(s.share_above_median * 100)}% of the time` : "";
  $(".summary", root).textContent = `${windows.length} windows of ${s.window_s} s, one every ${s.stride_s} s. `
    + `Mean over the windows ${s.mean.toFixed(3)}${above}.${timeline.note ? " " + timeline.note : ""}`;
  drawMoments(root, job, s, windows);
  const tip = $(".tip", root);
  const frames = new Map();  // window index -> object URL of its frame, fetched once
  const frameOf = (i) => {
    if (!frames.has(i)) frames.set(i, frameUrl(job.id, mids[i], 240));
    return frames.get(i);
  };
  let current = -1;
  const show = (i) => {
    current = Math.max(0, Math.min(windows.length - 1, i));
    const w = windows[current];
    const px = x(mids[current]), py = y(w.score);
    for (const [k, v] of [["x1", px], ["x2", px]]) guide.setAttribute(k, v);
    dot.setAttribute("cx", px); dot.setAttribute("cy", py);
    guide.setAttribute("visibility", "visible"); dot.setAttribute("visibility", "visible");
    $(".tip-text", tip).textContent = `${secondsText(w.start)}–${secondsText(w.end)}: ${w.score.toFixed(3)}`;
    const img = $("img", tip);
    img.alt = `frame at ${secondsText(mids[current])}`;
    frameOf(current).then((u) => { if (current === windows.indexOf(w)) img.src = u; });
    tip.hidden = false;
    const box = svg.getBoundingClientRect();
    tip.style.left = `${Math.min(Math.max(0, (px / W) * box.width - 70), Math.max(0, box.width - 150))}px`;
  };
  const hide = () => { tip.hidden = true; guide.setAttribute("visibility", "hidden"); dot.setAttribute("visibility", "hidden"); };
  const nearest = (ev) => {
    const box = svg.getBoundingClientRect();
    const t = t0 + (((ev.clientX - box.left) / box.width) * W - left) / Math.max(W - left - right, 1) * (t1 - t0);
    let best = 0;
    mids.forEach((m, i) => { if (Math.abs(m - t) < Math.abs(mids[best] - t)) best = i; });
    return best;
  };
  svg.onpointermove = (ev) => show(nearest(ev));
  svg.onpointerleave = hide;
  svg.onclick = (ev) => openWindow(root, job, windows[nearest(ev)], frameOf(nearest(ev)));
  svg.onkeydown = (ev) => {
    if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") { ev.preventDefault(); show(current + (ev.key === "ArrowRight" ? 1 : -1)); }
    if (ev.key === "Enter" && current >= 0) openWindow(root, job, windows[current], frameOf(current));
    if (ev.key === "Escape") hide();
  };
}

function drawLegend(root, s) {
  const legend = $(".legend", root);
  legend.replaceChildren();
  const item = (cls, text) => {
    const li = document.createElement("li");
    const key = document.createElement("span");
    key.className = `key ${cls}`;
    li.append(key, text);
    legend.append(li);
  };
  for (const key of ["peak", "trough", "hook"]) {
    const m = s[key];
    item(key, `${MARKS[key]}: ${m.score.toFixed(3)} at ${secondsText(m.start)}–${secondsText(m.end)}`);
  }
  if (s.training_median != null) item("median", `median of the model's training videos: ${s.training_median.toFixed(3)}`);
}

// The frames of the peak and the trough, named and scored, each opening its window.
function drawMoments(root, job, s, windows) {
  const moments = $(".moments", root);
  moments.replaceChildren();
  for (const key of ["peak", "trough"]) {
    const m = s[key];
    const f = document.createElement("figure");
    const img = document.createElement("img");
    img.alt = `${key} frame at ${secondsText((m.start + m.end) / 2)}`;
    const cap = document.createElement("figcaption");
    cap.textContent = `${key}: ${m.score.toFixed(3)} (${secondsText(m.start)}–${secondsText(m.end)})`;
    const open = document.createElement("button");
    open.type = "button";
    open.textContent = `Open the ${key} window`;
    const w = windows.find((x) => x.start === m.start) || windows[0];
    open.onclick = () => openWindow(root, job, w, frameUrl(job.id, (m.start + m.end) / 2, 240));
    f.append(img, cap, open);
    moments.append(f);
    frameUrl(job.id, (m.start + m.end) / 2).then((u) => { img.src = u; });
  }
}

// One window in detail: its frame, its tier contributions and what changed there.
function openWindow(root, job, w, frame) {
  const box = $(".window-detail", root);
  box.hidden = false;
  $(".window-title", box).textContent = `Window ${secondsText(w.start)}–${secondsText(w.end)}: ${w.score.toFixed(3)}`;
  const img = $("img", box);
  img.alt = `frame of ${job.filename} at ${secondsText((w.start + w.end) / 2)}`;
  frame.then((u) => { img.src = u; });
  $(".window-changes", box).textContent = w.changes ? `What changed here: ${w.changes}.` : "No cut, face or new main object here.";
  $(".window-facts", box).textContent = factWords(w.facts || {}, null);
  drawContributions(box, w.contributions || {});
  const heat = $(".window-heat", box), note = $(".heat-note", box);
  heat.hidden = true; note.hidden = true;
  $(".show-heat", box).onclick = () => showHeatmap(job, (w.start + w.end) / 2, heat, note);
}

// The window's frame with where its score comes from laid over it (computed on request).
async function showHeatmap(job, t, img, note) {
  note.hidden = false;
  note.textContent = "Greying out each region of the frame in turn and scoring again…";
  const res = await fetch(`/v1/jobs/${job.id}/heatmap?t=${t.toFixed(2)}&format=png`, { headers: headers() });
  if (!res.ok) {
    let body = null;
    try { body = await res.json(); } catch (_) { body = null; }
    note.textContent = `No map: ${reason(res.status, body)}`;
    return;
  }
  img.src = URL.createObjectURL(await res.blob());
  img.alt = `where in the frame at ${secondsText(t)} the score comes from`;
  img.hidden = false;
  note.textContent = "Green regions raise the score, red ones lower it: each cell was greyed out in every frame of the window and the window scored again.";
}
