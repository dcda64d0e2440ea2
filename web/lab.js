// The live lab: a real cluster started from the page, driven by clicks,
// watched over server-sent events.
import { api, el, page, announce, clockTime, droppedMark, stamp, onLeave, showError, parseJson } from "./page.js";

let view = null;      // the last snapshot from the server
let source = null;    // the EventSource
let presets = { presets: [], pause_ms: 0 }; // the known stories, from the API
let story = null;     // the preset being told: { name, preset, next, busy, auto, error }
let storyTimer = null; // the pause before the next step, when playing on its own
const log = [];       // recent lines for the event log
const LOG_LINES = 60;

export async function showLab() {
  [view, presets] = await Promise.all([api("/api/lab"), api("/api/presets")]);
  render();
  source = new EventSource("/api/lab/events");
  source.addEventListener("snapshot", (event) => { view = parseJson(event.data); render(); });
  source.addEventListener("status", (event) => { if (view) { view.replicas = parseJson(event.data).replicas; renderReplicas(); } });
  source.addEventListener("counts", (event) => { if (view) { const { type, ...counts } = parseJson(event.data); view.counts = counts; renderColumns(); } });
  source.addEventListener("write", (event) => {
    const write = parseJson(event.data);
    const outcome = write.outcome === "ok" ? `ok ${write.write_id} stamp ${stamp(write.stamp)}` : write.outcome;
    addLog(`${clockTime(write.complete_ns)} write  ${write.bucket.padEnd(8)} ${write.key} on replica ${write.replica}: items [${write.value.join(",")}] ${outcome}`);
  });
  source.addEventListener("replicated", (event) => {
    const moved = parseJson(event.data);
    addLog(`replicated: replica ${moved.replica} has replica ${moved.origin}'s writes up to ${moved.origin}:${moved.through}`);
  });
  source.addEventListener("drop", (event) => {
    const drop = parseJson(event.data);
    if (view) { view.drops.push(drop); renderColumns(); }
    addLog(`✗ DROPPED ${drop.bucket} ${drop.key} write ${drop.victim.write_id}: ${drop.cause}`);
    announce(`${drop.bucket} silently dropped write ${drop.victim.write_id}`);
  });
  onLeave(() => { source.close(); clearTimeout(storyTimer); if (story) story.auto = false; });
}

function addLog(line) {
  log.push(line);
  if (log.length > LOG_LINES) log.shift();
  const box = document.getElementById("log");
  if (box) {
    box.replaceChildren(...log.map((text) => el("div", {}, text)));
    box.scrollTop = box.scrollHeight;
  }
}

/** Runs an action; shows its error under the heading instead of failing silently. */
async function act(action) {
  try {
    const answer = await action();
    if (answer && answer.running !== undefined) { view = answer; render(); }
  } catch (error) {
    showError(error);
  }
}

function render() {
  const main = page("Live lab");
  main.append(el("section", { id: "presets", "aria-label": "Presets" }));
  renderPresets();
  if (!view.running) {
    const { min_replicas: fewest, max_replicas: most } = view.limits;
    const counts = Array.from({ length: most - fewest + 1 }, (_, index) => fewest + index);
    const count = el("select", { id: "replica-count", "aria-label": "Replicas" }, counts.map((n) => el("option", { value: n }, n)));
    main.append(
      el("p", {}, "Start a cluster of real replica processes on this machine. Each holds one bucket per strategy; every write goes to all of them, so you can compare the strategies side by side."),
      el("p", { class: "controls" }, el("label", { for: "replica-count" }, "Replicas"), count,
        el("button", { id: "start", class: "primary", onclick: () => act(() => api("/api/lab/start", "POST", { replicas: Number(count.value) })) }, "Start cluster")));
    return;
  }
  const key = el("input", { id: "key", value: "x", size: 6, "aria-label": "Key to write" });
  const limits = view.limits;
  const rate = el("input", { id: "rate", type: "number", min: limits.workload_rate_step, max: limits.max_workload_rate,
    step: limits.workload_rate_step, value: view.workload_rate ?? limits.default_workload_rate, "aria-label": "Operations per second" });
  main.append(
    el("p", { class: "controls" },
      el("button", { id: "stop", onclick: () => act(() => api("/api/lab/stop", "POST")) }, "Stop cluster"),
      el("label", { for: "key" }, "Key"), key,
      el("label", { for: "rate" }, "Workload (operations/s)"), rate,
      view.workload_rate
        ? el("button", { id: "workload", onclick: () => act(() => api("/api/lab/workload", "PUT", { rate: null })) }, "Stop workload")
        : el("button", { id: "workload", onclick: () => act(() => api("/api/lab/workload", "PUT", { rate: Number(rate.value) })) }, "Start workload")),
    el("h2", {}, "Replicas"),
    el("div", { class: "cards", id: "replicas" }),
    el("h2", {}, "Links"),
    linksTable(),
    partitionControls(),
    el("h2", {}, "Strategies side by side"),
    el("div", { id: "counts-note" }),
    el("div", { class: "columns", id: "columns" }),
    el("h2", {}, "Events"),
    el("div", { class: "log", id: "log", role: "log", "aria-label": "Writes and replication as they happen" }),
  );
  renderReplicas();
  renderColumns();
  addLog("watching the cluster");
}

function replicaCard(replica) {
  const id = replica.id;
  const field = (name, label, value) => {
    const input = el("input", { id: `${name}-${id}`, type: "number", value, step: "any", "aria-label": `${label} for replica ${id}` });
    return [el("label", { for: `${name}-${id}` }, label), input];
  };
  const [offsetLabel, offset] = field("offset", "offset ms", 0);
  const [driftLabel, drift] = field("drift", "drift ppm", 0);
  const [stepLabel, step] = field("step", "step ms", -500);
  const key = () => document.getElementById("key").value || "x";
  const clock = (body) => act(() => api(`/api/lab/replicas/${id}/clock`, "PUT", body));
  return el("section", { class: `card${replica.paused ? " paused" : ""}`, id: `replica-${id}`, "aria-label": `Replica ${id}` },
    el("h3", {}, `Replica ${id}`, replica.paused ? " (paused)" : "", replica.reachable ? "" : " (not answering)"),
    el("dl", {},
      el("dt", {}, "true time"), el("dd", {}, clockTime(replica.true_ns)),
      el("dt", {}, "physical clock"), el("dd", { class: "physical" }, clockTime(replica.physical_ns)),
      el("dt", {}, "offset"), el("dd", { class: "offset" }, `${replica.offset_ms >= 0 ? "+" : ""}${replica.offset_ms.toFixed(1)} ms`),
      el("dt", {}, "HLC"), el("dd", { class: "hlc" }, replica.hlc && replica.hlc.l ? `${clockTime(replica.hlc.l)} · counter ${replica.hlc.c}` : "–"),
      el("dt", {}, "has writes"), el("dd", {}, Object.entries(replica.high_water || {}).map(([origin, n]) => `${origin}:${n}`).join("  ") || "none"),
      el("dt", {}, "pid"), el("dd", { class: "pid" }, replica.pid ?? "–")),
    offsetGauge(replica.offset_ms),
    el("div", { class: "controls" }, offsetLabel, offset, el("button", { class: "set-offset", onclick: () => clock({ offset_ms: Number(offset.value) }) }, "Set offset")),
    el("div", { class: "controls" }, driftLabel, drift, el("button", { onclick: () => clock({ drift_ppm: Number(drift.value) }) }, "Set drift")),
    el("div", { class: "controls" }, stepLabel, step, el("button", { onclick: () => clock({ step_ms: Number(step.value) }) }, "Step clock"),
      el("button", { class: "strobe", title: "Flip between the clock and the clock plus the step, every 50 ms, for 10 s",
        onclick: () => clock({ strobe_ms: Number(step.value), strobe_period_ms: STROBE_PERIOD_MS, strobe_for_ms: STROBE_FOR_MS }) }, "Strobe")),
    el("div", { class: "controls" },
      el("button", { class: "write", onclick: () => act(() => api("/api/lab/write", "POST", { replica: id, key: key() })) }, "Write key here"),
      replica.paused
        ? el("button", { class: "resume", onclick: () => act(() => api(`/api/lab/replicas/${id}/resume`, "POST")) }, "▶ Resume")
        : el("button", { class: "pause", onclick: () => act(() => api(`/api/lab/replicas/${id}/pause`, "POST")) }, "Pause")));
}

/** The clock's offset from true time, drawn on a ±1 s scale (clamped). */
function offsetGauge(offsetMs) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 300 30");
  svg.setAttribute("width", "300");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `clock offset ${offsetMs.toFixed(1)} ms against true time`);
  const x = 150 + Math.max(-1, Math.min(1, offsetMs / 1000)) * 140;
  svg.innerHTML = `<line x1="10" y1="15" x2="290" y2="15" stroke="#888" stroke-width="2"/>
    <line x1="150" y1="4" x2="150" y2="26" stroke="#111" stroke-width="2"/>
    <text x="150" y="29" font-size="7" text-anchor="middle">true time</text>
    <text x="10" y="29" font-size="7">−1 s</text><text x="290" y="29" font-size="7" text-anchor="end">+1 s</text>
    <circle cx="${x}" cy="15" r="6" fill="#0b4f9c"/>`;
  return svg;
}

function renderReplicas() {
  const box = document.getElementById("replicas");
  if (!box || !view) return;
  // Keep what a user is typing: only the read-outs change every tick.
  for (const replica of view.replicas) {
    const card = document.getElementById(`replica-${replica.id}`);
    const fresh = replicaCard(replica);
    if (!card) { box.append(fresh); continue; }
    const wasPaused = card.classList.contains("paused");
    if (wasPaused !== replica.paused) { card.replaceWith(fresh); continue; }
    card.querySelector("h3").replaceWith(fresh.querySelector("h3"));
    card.querySelector("dl").replaceWith(fresh.querySelector("dl"));
    card.querySelector("svg").replaceWith(fresh.querySelector("svg"));
  }
}

/** How the page strobes a clock: flips every this many ms, for this long. */
const STROBE_PERIOD_MS = 50;
const STROBE_FOR_MS = 10000;

/** Partitions as Jepsen shapes them, and a heal of every link. */
function partitionControls() {
  const shape = el("select", { id: "partition-shape", "aria-label": "Partition shape" },
    el("option", { value: "halves" }, "halves: a minority and a majority"),
    el("option", { value: "ring" }, "ring: each hears its two neighbours"),
    el("option", { value: "bridge" }, "bridge: two halves joined by one replica"),
    el("option", { value: "isolate" }, "isolate replica 1"));
  const oneWay = el("input", { id: "partition-one-way", type: "checkbox" });
  return el("p", { class: "controls" },
    el("label", { for: "partition-shape" }, "Partition"), shape,
    el("label", {}, oneWay, " one way (the first group goes deaf)"),
    el("button", { id: "partition", onclick: () => act(() => api("/api/lab/partition", "PUT", { shape: shape.value, one_way: oneWay.checked })) }, "Partition"),
    el("button", { id: "heal-all", onclick: () => act(() => api("/api/lab/heal", "POST")) }, "Heal every link"));
}

function linksTable() {
  const ids = view.replicas.map((replica) => replica.id);
  const rows = [];
  for (const a of ids) for (const b of ids) if (a < b) {
    const cut = view.cuts.some(([x, y]) => x === a && y === b);
    rows.push(el("tr", {},
      el("th", { scope: "row" }, `${a} ↔ ${b}`),
      el("td", {}, cut ? droppedMark("cut") : "connected"),
      el("td", {}, el("button", { class: cut ? "heal" : "cut", "aria-label": `${cut ? "Heal" : "Cut"} link ${a} to ${b}`,
        onclick: () => act(() => api("/api/lab/links", "PUT", { a, b, cut: !cut })) }, cut ? "Heal" : "Cut"))));
  }
  return el("table", { id: "links" }, el("tbody", {}, rows));
}

function renderColumns() {
  const box = document.getElementById("columns");
  if (!box || !view) return;
  const counts = view.counts || { strategies: {} };
  document.getElementById("counts-note").replaceChildren(el("p", {},
    counts.waiting ? `Waiting: ${counts.waiting}. ` : "",
    `A drop is shown once its key has settled: no write in flight, every write on every replica, every replica agreeing. Keys not settled yet: ${counts.unsettled ?? 0}.`));
  box.replaceChildren(...view.buckets.map((bucket) => {
    const totals = counts.strategies[bucket] || {};
    const drops = view.drops.filter((drop) => drop.bucket === bucket);
    return el("section", { class: "column", id: `strategy-${bucket}`, "aria-label": `Strategy ${bucket}` },
      el("h3", {}, bucket),
      el("p", {}, el("span", { class: "count acked" }, totals.acked ?? 0), " acknowledged, ",
        el("span", { class: `count drops ${drops.length ? "dropped" : "kept"}` }, drops.length ? `✗ ${drops.length}` : "0"), " silently dropped"),
      el("p", {}, `causality ${totals.causality ?? 0} · real-time ${totals.realtime ?? 0} · concurrent ${totals.concurrent ?? 0} · reads with siblings ${totals.siblings ?? 0}`),
      el("ul", { class: "drop-list" }, drops.slice(-12).reverse().map((drop) =>
        el("li", { class: "drop" }, droppedMark(`${drop.key} ${drop.victim.write_id}`), ` (${drop.cause}): ${drop.rule}`))));
  }));
}

/** The presets: a known story played on the cluster, a step at a time, with what to say. */
function renderPresets() {
  const box = document.getElementById("presets");
  if (!box) return;
  const choose = (name, preset) => {
    clearTimeout(storyTimer);
    story = { name, preset, next: 0, busy: false, auto: false, error: null };
    renderPresets();
  };
  box.replaceChildren(
    el("h2", {}, "Presets"),
    el("p", { class: "controls" }, "Tell a known story on a fresh cluster: ",
      presets.presets.map(({ name, preset }) => el("button", { class: `preset${story?.name === name ? " primary" : ""}`,
        "data-name": name, onclick: () => choose(name, preset) }, preset.title))));
  if (!story) return;
  const { preset, next, busy, auto } = story;
  const steps = preset.step;
  const over = next >= steps.length;
  box.append(
    el("p", { id: "story-summary" }, preset.summary),
    el("ol", { id: "story-steps", class: "story" }, steps.map((step, index) =>
      el("li", { class: index < next ? "done" : index === next ? "current" : "", "aria-current": index === next ? "step" : false },
        index < next ? "✓ " : index === next ? "▶ " : "", step.say))),
    el("p", { class: "controls" },
      el("button", { id: "story-next", class: "primary", disabled: busy || over || auto, onclick: () => playStep() },
        over ? "Told" : `Play step ${next + 1}`),
      auto
        ? el("button", { id: "story-pause", onclick: () => { story.auto = false; clearTimeout(storyTimer); renderPresets(); } }, "Pause after this step")
        : el("button", { id: "story-play", disabled: busy || over, onclick: () => { story.auto = true; playStep(); } }, "Play to the end"),
      el("span", { id: over ? "story-done" : "story-status", "aria-live": "polite" },
        over ? "The story is told: the counts below are the oracle's verdict."
          : busy ? `Playing step ${next + 1} of ${steps.length}…` : `Step ${next + 1} of ${steps.length} is next.`)),
    story.error ? el("p", { class: "error", role: "alert" }, "✗ ", story.error) : "");
}

/** Plays the story's next step; when playing on its own, the next after a pause. */
async function playStep() {
  const playing = story;
  if (!playing || playing.busy || playing.next >= playing.preset.step.length) return;
  playing.busy = true;
  playing.error = null;
  renderPresets();
  try {
    view = await api(`/api/lab/presets/${encodeURIComponent(playing.name)}/steps/${playing.next}`, "POST");
    playing.next += 1;
    announce(`step ${playing.next} done`);
  } catch (error) {
    playing.error = error.message;
    playing.auto = false;
  }
  playing.busy = false;
  if (story !== playing) return;
  render();
  if (playing.auto && playing.next < playing.preset.step.length) {
    storyTimer = setTimeout(() => { if (story === playing && playing.auto) playStep(); }, presets.pause_ms);
  } else {
    playing.auto = false;
    renderPresets();
  }
}
