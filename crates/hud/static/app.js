// zelda-rl HUD: plain JavaScript, no dependencies, no build step.
// The server pushes one JSON snapshot at a time over /api/live (latest wins); this file
// draws it: screens, stitched room maps with the agents, curves, judge scores, and the
// segment player.
"use strict";

const ROOM_W = 160, ROOM_H = 128; // playfield of one room (the status bar is cut off)
const $ = (id) => document.getElementById(id);

// What the page drew last, for people debugging and for the browser test.
window.hud = {
  snapshots: 0,
  agents: [],        // {id, canvas, x, y, color} in page CSS pixels, centre of each marker
  rooms: [],         // {canvas, x, y, w, h, art} in page CSS pixels, visited rooms
  screens: [],       // {id, x, y, w, h} in page CSS pixels, images shown
  replay: null,      // {key, mode, frames, shown, playing}
  scores: 0,
  paused: false,     // the pause button: keep the picture still (snapshots still arrive)
};

// ---------------------------------------------------------------- colours
function envColor(index) {
  // Golden-angle hues: neighbours differ, every agent is saturated (the room art is grey).
  const hue = (index * 137.508) % 360;
  return `hsl(${hue.toFixed(0)}, 95%, 55%)`;
}

// ---------------------------------------------------------------- live feed
let lastSnapshot = null;
let ws = null;
function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(`${proto}//${location.host}/api/live`);
  ws.onopen = () => { $("conn").textContent = "live"; $("conn").className = "conn ok"; };
  ws.onclose = () => {
    $("conn").textContent = "reconnecting"; $("conn").className = "conn bad";
    setTimeout(connect, 1000);
  };
  ws.onerror = () => ws.close();
  ws.onmessage = (ev) => {
    try {
      const snap = JSON.parse(ev.data);
      lastSnapshot = snap;
      window.hud.snapshots++;
      if (!window.hud.paused) render(snap);
    } catch (e) {
      console.error("bad snapshot", e);
    }
  };
}

function fmt(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return "-";
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(2) + "M";
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return Number(n).toFixed(digits);
}

function roomLabel(r) {
  const hex = (v) => v.toString(16).padStart(2, "0");
  return r.indoor ? `map ${hex(r.map)} room ${hex(r.room)}` : `room ${hex(r.room)}`;
}

function render(s) {
  $("t-run").textContent = s.last_run || "-";
  $("t-workers").textContent = s.totals.workers;
  $("t-envs").textContent = s.totals.envs;
  $("t-sps").textContent = fmt(s.totals.steps_per_second);
  $("t-steps").textContent = fmt(s.totals.env_steps);
  $("t-episodes").textContent = fmt(s.totals.episodes);
  $("t-rooms").textContent = s.totals.rooms;
  renderScreens(s);
  renderMaps(s);
  renderCurves(s);
  if (s.last_run && !runChosen) maybeSetRun(s.last_run);
}

// ---------------------------------------------------------------- screens
const screenCards = new Map();
function renderScreens(s) {
  const box = $("screens");
  $("no-agents").style.display = s.envs.length ? "none" : "";
  const shown = s.envs.filter((e) => e.screen);
  $("agents-note").textContent = s.envs.length > shown.length
    ? `(${shown.length} of ${s.envs.length} screens shown)` : "";
  const alive = new Set();
  s.envs.forEach((e, i) => {
    if (!e.screen) return;
    alive.add(e.id);
    let card = screenCards.get(e.id);
    if (!card) {
      card = document.createElement("div");
      card.className = "screen";
      card.dataset.id = e.id;
      const img = document.createElement("img");
      img.alt = `screen of ${e.id}`;
      const cap = document.createElement("div");
      cap.className = "cap";
      card.append(img, cap);
      box.append(card);
      screenCards.set(e.id, card);
    }
    card.style.borderColor = envColor(i);
    card.firstChild.src = "data:image/png;base64," + e.screen;
    const hearts = (e.health / 8).toFixed(1);
    card.lastChild.innerHTML =
      `<b>${e.id}</b> ep ${e.episode} step ${e.step} · ${roomLabel(e.room)} · ` +
      `\u2665${hearts}/${e.max_hearts} · rupees ${e.rupees} · keys ${e.keys} · inst ${e.instruments} · ` +
      `R ${e.ret.toFixed(2)}`;
  });
  for (const [id, card] of screenCards) {
    if (!alive.has(id)) { card.remove(); screenCards.delete(id); }
  }
  window.hud.screens = [...screenCards.entries()].map(([id, card]) => {
    const r = card.firstChild.getBoundingClientRect();
    return { id, x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height };
  });
}

// ---------------------------------------------------------------- maps
const artImages = new Map(); // room key -> {v, img, ok}
const mapCanvases = new Map();

function roomKey(r) { return `${r.indoor ? 1 : 0}-${r.map}-${r.room}-${r.grid}`; }

function artFor(room) {
  const k = roomKey(room);
  let a = artImages.get(k);
  if (room.art && (!a || a.v < room.art)) {
    const img = new Image();
    const entry = { v: room.art, img, ok: false };
    img.onload = () => { entry.ok = true; if (lastSnapshot) renderMaps(lastSnapshot); };
    img.src = `/api/room?indoor=${room.indoor ? 1 : 0}&map=${room.map}&room=${room.room}&grid=${room.grid}&v=${room.art}`;
    // Keep showing the previous art until the new one has loaded.
    if (a && a.ok) { entry.prev = a.img; }
    artImages.set(k, entry);
    a = entry;
  }
  if (!a) return null;
  if (a.ok) return a.img;
  return a.prev || null;
}

function renderMaps(s) {
  const box = $("maps");
  const byCanvas = new Map();
  for (const c of s.canvases) byCanvas.set(c.id, { c, rooms: [], agents: [] });
  for (const r of s.rooms) byCanvas.get(r.place.canvas)?.rooms.push(r);
  s.envs.forEach((e, i) => byCanvas.get(e.place.canvas)?.agents.push({ e, i }));
  const maxWidth = Math.max(320, Math.min(box.clientWidth || 640, 960) - 12);
  const agentsOut = [], roomsOut = [];
  const seen = new Set();
  for (const { c, rooms, agents } of byCanvas.values()) {
    seen.add(c.id);
    let entry = mapCanvases.get(c.id);
    if (!entry) {
      const wrap = document.createElement("div");
      wrap.className = "map";
      const title = document.createElement("div");
      title.className = "map-title";
      const canvas = document.createElement("canvas");
      canvas.id = "map-" + c.id.replace(/^map-/, "");
      wrap.append(title, canvas);
      // The overworld first.
      if (c.id === "overworld") box.prepend(wrap); else box.append(wrap);
      entry = { wrap, title, canvas };
      mapCanvases.set(c.id, entry);
    }
    // The bounding box of what was visited or is occupied, at least 2x2 rooms.
    let minC = 99, maxC = -1, minR = 99, maxR = -1;
    const take = (p) => { minC = Math.min(minC, p.col); maxC = Math.max(maxC, p.col); minR = Math.min(minR, p.row); maxR = Math.max(maxR, p.row); };
    rooms.forEach((r) => take(r.place));
    agents.forEach((a) => take(a.e.place));
    if (maxC < 0) continue;
    if (maxC - minC < 1) maxC = Math.min(c.cols - 1, minC + 1), minC = Math.max(0, maxC - 1);
    if (maxR - minR < 1) maxR = Math.min(c.rows - 1, minR + 1), minR = Math.max(0, maxR - 1);
    const cols = maxC - minC + 1, rows = maxR - minR + 1;
    const isBig = c.id === "overworld";
    const cw = Math.max(24, Math.min(isBig ? ROOM_W : ROOM_W / 2, Math.floor((isBig ? maxWidth : maxWidth / 2) / cols)));
    const ch = Math.round(cw * ROOM_H / ROOM_W);
    const W = cols * cw, H = rows * ch;
    const canvas = entry.canvas;
    if (canvas.width !== W || canvas.height !== H) { canvas.width = W; canvas.height = H; }
    entry.title.textContent = `${c.title} · ${rooms.length} rooms`;
    const g = canvas.getContext("2d");
    g.imageSmoothingEnabled = false;
    g.fillStyle = "#0d0f12";
    g.fillRect(0, 0, W, H);
    // Grid of the unvisited cells.
    g.strokeStyle = "#252a33";
    g.lineWidth = 1;
    for (let x = 0; x <= cols; x++) { g.beginPath(); g.moveTo(x * cw + 0.5, 0); g.lineTo(x * cw + 0.5, H); g.stroke(); }
    for (let y = 0; y <= rows; y++) { g.beginPath(); g.moveTo(0, y * ch + 0.5); g.lineTo(W, y * ch + 0.5); g.stroke(); }
    // Page coordinates of the drawing area (inside the canvas border).
    const rect = canvas.getBoundingClientRect();
    const ox0 = rect.left + canvas.clientLeft + scrollX, oy0 = rect.top + canvas.clientTop + scrollY;
    const sx = canvas.clientWidth / W || 1, sy = canvas.clientHeight / H || 1;
    for (const r of rooms) {
      const x = (r.place.col - minC) * cw, y = (r.place.row - minR) * ch;
      const img = artFor(r);
      if (img) {
        g.drawImage(img, 0, 0, ROOM_W, ROOM_H, x, y, cw, ch);
      } else {
        g.fillStyle = "#3d4a36";
        g.fillRect(x + 1, y + 1, cw - 1, ch - 1);
        g.fillStyle = "#9fb08f";
        g.font = `${Math.max(9, Math.floor(ch / 5))}px DejaVu Sans Mono, monospace`;
        g.fillText(roomLabel(r).replace("map ", "").replace("room ", ""), x + 4, y + Math.max(12, ch / 4));
      }
      g.strokeStyle = "rgba(127, 201, 127, 0.55)";
      g.strokeRect(x + 0.5, y + 0.5, cw - 1, ch - 1);
      roomsOut.push({ canvas: c.id, x: ox0 + x * sx, y: oy0 + y * sy, w: cw * sx, h: ch * sy, art: !!img });
    }
    // Agents on top, several in one room spread a little so each stays visible.
    const perRoom = new Map();
    const radius = Math.max(4, Math.round(cw / 14));
    for (const { e, i } of agents) {
      const k = `${e.place.col},${e.place.row}`;
      const n = perRoom.get(k) || 0;
      perRoom.set(k, n + 1);
      const px = (e.place.col - minC) * cw + Math.min(Math.max(e.x, 0), ROOM_W) * cw / ROOM_W;
      const py = (e.place.row - minR) * ch + Math.min(Math.max(e.y, 0), ROOM_H) * ch / ROOM_H;
      const ox = ((n % 3) - 1) * radius * 0.6, oy = (Math.floor(n / 3) % 3 - 1) * radius * 0.6 * (n ? 1 : 0);
      const cx = Math.min(Math.max(px + ox, radius), W - radius), cy = Math.min(Math.max(py + oy, radius), H - radius);
      const color = envColor(i);
      g.beginPath();
      g.arc(cx, cy, radius + 2, 0, Math.PI * 2);
      g.fillStyle = "#000";
      g.fill();
      g.beginPath();
      g.arc(cx, cy, radius, 0, Math.PI * 2);
      g.fillStyle = color;
      g.fill();
      if (cw >= 60) {
        g.font = "10px DejaVu Sans, sans-serif";
        g.fillStyle = "#fff";
        g.strokeStyle = "#000";
        g.lineWidth = 3;
        g.strokeText(e.id, cx + radius + 2, cy - radius);
        g.fillText(e.id, cx + radius + 2, cy - radius);
        g.lineWidth = 1;
      }
      agentsOut.push({ id: e.id, canvas: c.id, x: ox0 + cx * sx, y: oy0 + cy * sy, color, r: radius * sx });
    }
  }
  for (const [id, entry] of mapCanvases) {
    if (!seen.has(id)) { entry.wrap.remove(); mapCanvases.delete(id); }
  }
  window.hud.agents = agentsOut;
  window.hud.rooms = roomsOut;
}

// ---------------------------------------------------------------- curves
function plot(canvas, series, opts = {}) {
  const g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, pad = { l: 44, r: 8, t: 8, b: 18 };
  g.fillStyle = "#15181e";
  g.fillRect(0, 0, W, H);
  const pts = series.flatMap((s) => s.points);
  if (!pts.length) {
    g.fillStyle = "#8a93a3";
    g.font = "12px DejaVu Sans, sans-serif";
    g.fillText(opts.empty || "no data yet", pad.l, H / 2);
    return;
  }
  let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
  let y0 = Math.min(...pts.map((p) => p[1])), y1 = Math.max(...pts.map((p) => p[1]));
  if (opts.zero) y0 = Math.min(0, y0);
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 += 1; y0 -= opts.zero ? 0 : 1; }
  const X = (x) => pad.l + (x - x0) / (x1 - x0) * (W - pad.l - pad.r);
  const Y = (y) => H - pad.b - (y - y0) / (y1 - y0) * (H - pad.t - pad.b);
  g.strokeStyle = "#333944";
  g.fillStyle = "#8a93a3";
  g.font = "10px DejaVu Sans, sans-serif";
  for (const v of [y0, (y0 + y1) / 2, y1]) {
    g.beginPath(); g.moveTo(pad.l, Y(v) + 0.5); g.lineTo(W - pad.r, Y(v) + 0.5); g.stroke();
    g.fillText(fmt(v, Math.abs(y1 - y0) < 10 ? 2 : 0), 2, Y(v) + 3);
  }
  g.fillText(opts.xLabel ? opts.xLabel(x0) : fmt(x0), pad.l, H - 4);
  const right = opts.xLabel ? opts.xLabel(x1) : fmt(x1);
  g.fillText(right, W - pad.r - g.measureText(right).width, H - 4);
  for (const s of series) {
    if (s.dots) {
      g.fillStyle = s.color;
      for (const [x, y] of s.points) g.fillRect(X(x) - 1.5, Y(y) - 1.5, 3, 3);
    } else {
      g.strokeStyle = s.color;
      g.lineWidth = 2;
      g.beginPath();
      s.points.forEach(([x, y], i) => (i ? g.lineTo(X(x), Y(y)) : g.moveTo(X(x), Y(y))));
      g.stroke();
      g.lineWidth = 1;
    }
  }
}

function rolling(values, n) {
  const out = [];
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    if (i >= n) sum -= values[i - n];
    out.push(sum / Math.min(i + 1, n));
  }
  return out;
}

function renderCurves(s) {
  const eps = s.episodes;
  const base = Math.max(0, s.totals.episodes - eps.length);
  const rets = eps.map((e) => e.ret);
  const mean = rolling(rets, 20);
  plot($("curve-returns"), [
    { points: eps.map((e, i) => [base + i + 1, e.ret]), color: "rgba(127, 201, 255, 0.6)", dots: true },
    { points: mean.map((m, i) => [base + i + 1, m]), color: "#ffb347" },
  ], { empty: "no episode finished yet" });
  const rooms = eps.map((e) => e.rooms);
  plot($("curve-rooms"), [
    { points: eps.map((e, i) => [base + i + 1, e.rooms]), color: "rgba(127, 201, 127, 0.6)", dots: true },
    { points: rolling(rooms, 20).map((m, i) => [base + i + 1, m]), color: "#7fc97f" },
  ], { zero: true, empty: "no episode finished yet" });
  plot($("curve-sps"), [{ points: s.throughput, color: "#c9a0ff" }],
    { zero: true, xLabel: (t) => `${Math.round(t)} s`, empty: "no worker yet" });
}

// ---------------------------------------------------------------- runs, scores, segments
let currentRun = null;
let runChosen = false;

function maybeSetRun(run) {
  if (currentRun === run) return;
  currentRun = run;
  const sel = $("run-select");
  if (![...sel.options].some((o) => o.value === run)) sel.append(new Option(run, run));
  sel.value = run;
  loadSegments();
  loadScores();
}

async function getJson(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  return r.json();
}

async function loadRuns() {
  try {
    const [info, runs] = await Promise.all([getJson("/api/info"), getJson("/api/runs")]);
    const sel = $("run-select");
    const have = new Set([...sel.options].map((o) => o.value));
    for (const r of runs.runs) if (!have.has(r)) sel.append(new Option(r, r));
    if (!currentRun && (info.run || runs.runs.length)) maybeSetRun(info.run || runs.runs[runs.runs.length - 1]);
  } catch (e) {
    $("segments-note").textContent = String(e);
  }
}

async function loadSegments() {
  if (!currentRun) return;
  try {
    const d = await getJson(`/api/segments?run=${encodeURIComponent(currentRun)}`);
    const list = $("segment-list");
    const keep = list.value;
    list.innerHTML = "";
    // Newest first.
    for (const s of d.segments.slice().reverse()) {
      const o = new Option(`${s.stream} #${Number(s.index)} (${(s.size / 1024).toFixed(1)} KiB)`, s.key);
      list.append(o);
    }
    if (keep) list.value = keep;
    $("segments-note").textContent = d.total > d.segments.length
      ? `${d.segments.length} newest of ${d.total} in ${d.run}` : `${d.total} in ${d.run}`;
  } catch (e) {
    $("segments-note").textContent = String(e);
  }
}

async function loadScores() {
  if (!currentRun) return;
  try {
    const d = await getJson(`/api/scores?run=${encodeURIComponent(currentRun)}`);
    const body = $("scores").querySelector("tbody");
    body.innerHTML = "";
    for (const s of d.scores) {
      const tr = document.createElement("tr");
      const img = s.segment ? `<img alt="keyframe" src="/api/keyframe?segment=${encodeURIComponent(s.segment)}">` : "";
      const judges = s.judges.map(([r, v]) => `${r}: ${v}`).join("<br>");
      tr.innerHTML = `<td>${img}</td><td>${esc(s.segment || "?")}${s.backend ? `<br><span class="dim">${esc(s.backend)}</span>` : ""}</td>` +
        `<td>${s.score === null ? "-" : Number(s.score).toFixed(2)}</td><td class="summary">${esc(s.summary || "")}</td><td>${judges}</td>`;
      tr.title = JSON.stringify(s.raw).slice(0, 2000);
      if (s.key) tr.onclick = () => { $("segment-list").value = s.key; playSegment(s.key); };
      body.append(tr);
    }
    window.hud.scores = d.scores.length;
    $("no-scores").style.display = d.scores.length ? "none" : "";
    $("scores-note").textContent = d.total ? `${d.scores.length} latest of ${d.total} in ${d.run}` : "";
    if (d.problems.length) $("scores-note").textContent += ` · ${d.problems.length} unreadable lines`;
  } catch (e) {
    $("scores-note").textContent = String(e);
  }
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// ---------------------------------------------------------------- player
const player = { frames: [], steps: [], index: 0, timer: null, replay: null };

async function playSegment(key) {
  stop();
  $("player-info").textContent = "loading " + key + " ...";
  try {
    const d = await getJson(`/api/replay?key=${encodeURIComponent(key)}`);
    const images = await Promise.all(d.frames.map(([step, png]) => new Promise((resolve) => {
      const img = new Image();
      img.onload = () => resolve({ step, img });
      img.onerror = () => resolve({ step, img: null });
      img.src = "data:image/png;base64," + png;
    })));
    player.frames = images.filter((f) => f.img);
    player.steps = d.steps;
    player.replay = d;
    player.index = 0;
    $("seek").max = Math.max(0, player.frames.length - 1);
    const m = d.meta || {};
    $("player-meta").textContent =
      `${d.mode === "replay" ? "re-emulated and checked step by step" : "stored keyframes"} · episode ${m.episode} ` +
      `from step ${m.episode_step} · ${m.steps} steps · policy ${m.policy} · ${m.cartridge_title} · total reward ${d.total_reward.toFixed(2)}` +
      (d.note ? ` · ${d.note}` : "");
    window.hud.replay = { key, mode: d.mode, frames: player.frames.length, shown: 0, playing: false };
    show(0);
    play();
  } catch (e) {
    $("player-info").textContent = String(e);
  }
}

function show(i) {
  if (!player.frames.length) return;
  player.index = Math.max(0, Math.min(i, player.frames.length - 1));
  const f = player.frames[player.index];
  const g = $("player").getContext("2d");
  g.imageSmoothingEnabled = false;
  g.drawImage(f.img, 0, 0);
  $("seek").value = player.index;
  const st = player.steps[f.step] || {};
  let cum = 0;
  for (let k = 0; k <= f.step && k < player.steps.length; k++) cum += player.steps[k].reward || 0;
  $("player-info").textContent =
    `step ${f.step + 1}/${player.steps.length} · ${st.room || "?"} · x ${st.x} y ${st.y} · ` +
    `\u2665${((st.health || 0) / 8).toFixed(1)} · rupees ${st.rupees} · keys ${st.keys} · reward ${(st.reward || 0).toFixed(2)} (sum ${cum.toFixed(2)})`;
  if (window.hud.replay) window.hud.replay.shown++;
}

function play() {
  stop();
  if (!player.frames.length) return;
  const fps = Number($("speed").value) || 10;
  player.timer = setInterval(() => {
    if (player.index >= player.frames.length - 1) { stop(); return; }
    show(player.index + 1);
  }, 1000 / fps);
  $("play").textContent = "pause";
  if (window.hud.replay) window.hud.replay.playing = true;
}

function stop() {
  if (player.timer) clearInterval(player.timer);
  player.timer = null;
  $("play").textContent = "play";
  if (window.hud.replay) window.hud.replay.playing = false;
}

// ---------------------------------------------------------------- wiring
$("segment-list").addEventListener("change", (e) => { if (e.target.value) playSegment(e.target.value); });
$("run-select").addEventListener("change", (e) => { runChosen = true; currentRun = null; maybeSetRun(e.target.value); });
$("refresh-segments").addEventListener("click", () => { loadRuns(); loadSegments(); });
$("play").addEventListener("click", () => {
  if (player.timer) { stop(); return; }
  if (player.index >= player.frames.length - 1) show(0);
  play();
});
$("seek").addEventListener("input", (e) => { stop(); show(Number(e.target.value)); });
$("speed").addEventListener("change", () => { if (player.timer) play(); });
window.addEventListener("resize", () => { if (lastSnapshot) render(lastSnapshot); });
$("pause").addEventListener("click", () => {
  window.hud.paused = !window.hud.paused;
  $("pause").textContent = window.hud.paused ? "resume" : "pause";
  if (!window.hud.paused && lastSnapshot) render(lastSnapshot);
});

connect();
loadRuns();
setInterval(loadScores, 5000);
setInterval(() => { if (!$("segment-list").value) loadSegments(); }, 10000);
setInterval(loadRuns, 30000);
