// Compare: two or more jobs picked in History, their curves on one chart (one colour each, on
// one score axis) and a table of what an A/B reading needs: the mean, the peak, the hook and
// the share of the time above the median. Two cuts of one advertisement side by side.
"use strict";

const COMPARE_COLOURS = ["#0b6bcb", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#5c940d"];

async function compareJobs(ids) {
  const jobs = [];
  for (const id of ids) {
    try { jobs.push(await api(`/v1/jobs/${id}`)); } catch (e) { showNotice(e.message); return; }
  }
  const done = jobs.filter((j) => j.status === "done" && j.result && j.result[0]);
  const section = $("#compare");
  section.hidden = false;
  const note = $("#compare-note");
  note.textContent = done.length < jobs.length ? `${jobs.length - done.length} of the picked jobs have no result yet and are left out.` : "";
  drawComparison(done);
  fillComparisonTable(done);
  section.scrollIntoView();
}

// Each video's curve as (time, score) points; a video scored as one clip is one flat line over its length.
function comparedSeries(job) {
  const rec = job.result[0];
  const tl = rec.timeline;
  if (tl && tl.windows.length) return tl.windows.map((w) => [(w.start + w.end) / 2, w.score]);
  return [[0, rec.score], [Math.max(rec.duration_s || 3, 0.1), rec.score]];
}

function drawComparison(jobs) {
  const svg = $("#compare-curve");
  const W = Math.max(320, Math.round(svg.getBoundingClientRect().width) || 640), H = 220;
  const left = 40, right = 12, top = 10, bottom = 30;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const legend = $("#compare-legend");
  legend.replaceChildren();
  if (!jobs.length) return;
  const series = jobs.map(comparedSeries);
  const axis = scoreAxis(series.flat().map((p) => p[1]));
  const ends = jobs.map((j) => { const tl = j.result[0].timeline; return tl && tl.windows.length ? tl.windows[tl.windows.length - 1].end : 3; });
  const t1 = Math.max(...ends, ...series.flat().map((p) => p[0]), 1);
  const x = (t) => left + (t / t1) * (W - left - right);
  const y = (v) => H - bottom - ((v - axis.lo) / Math.max(axis.hi - axis.lo, 1e-9)) * (H - top - bottom);
  const label = (text, attrs) => { const t = svgEl("text", attrs); t.textContent = text; svg.append(t); };
  for (const v of axis.ticks) {
    svg.append(svgEl("line", { class: "grid", x1: left, x2: W - right, y1: y(v), y2: y(v) }));
    label(v.toFixed(2), { class: "ytick", x: left - 4, y: y(v) + 4, "text-anchor": "end" });
  }
  const step = timeStep(t1);
  for (let t = 0; t <= t1 + 1e-9; t += step) {
    svg.append(svgEl("line", { class: "tick", x1: x(t), x2: x(t), y1: H - bottom, y2: H - bottom + 4 }));
    label(`${t} s`, { class: "xtick", x: x(t), y: H - bottom + 16, "text-anchor": "middle" });
  }
  series.forEach((points, k) => {
    const colour = COMPARE_COLOURS[k % COMPARE_COLOURS.length];
    svg.append(svgEl("polyline", { class: "compared", stroke: colour, "data-job": jobs[k].id,
      points: points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ") }));
    const li = document.createElement("li");
    const key = document.createElement("span");
    key.className = "swatch";
    key.style.background = colour;
    li.append(key, jobs[k].filename);
    legend.append(li);
  });
  svg.setAttribute("aria-label", `Memorability over time of ${jobs.map((j) => j.filename).join(", ")}, axis from ${axis.lo.toFixed(2)} to ${axis.hi.toFixed(2)}`);
}

// Mean, peak, hook and share above the median per video. The median is the model's training
// median when there is one, else the median of all the compared windows (zero-shot).
function fillComparisonTable(jobs) {
  const body = $("#compare-table tbody");
  body.replaceChildren();
  const summaries = jobs.map((j) => (j.result[0].timeline || {}).summary || null);
  const training = summaries.find((s) => s && s.training_median != null);
  const pooled = jobs.flatMap((j) => comparedSeries(j).map((p) => p[1])).sort((a, b) => a - b);
  const median = training ? training.training_median : pooled[Math.floor((pooled.length - 1) / 2)];
  $("#compare-median").textContent = training ? `above the training median (${median.toFixed(3)})`
    : `above the median of the compared windows (${median.toFixed(3)})`;
  jobs.forEach((job, k) => {
    const rec = job.result[0], s = summaries[k];
    const points = comparedSeries(job).map((p) => p[1]);
    const above = points.filter((v) => v > median).length / points.length;
    const cells = [job.filename, rec.score.toFixed(3),
      s ? `${s.peak.score.toFixed(3)} at ${secondsText(s.peak.start)}–${secondsText(s.peak.end)}` : "one score",
      s ? s.hook.score.toFixed(3) : "–", `${Math.round(above * 100)}%`];
    const tr = document.createElement("tr");
    tr.dataset.job = job.id;
    for (const text of cells) { const td = document.createElement("td"); td.textContent = text; tr.append(td); }
    body.append(tr);
  });
}
