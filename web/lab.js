// The live lab: a real cluster started from the page, driven by clicks or by
// a preset's story, watched over server-sent events. At the top, side by
// side, what a class needs at each step: the story's line and its controls,
// and what every strategy has kept and lost.
import { api, el, page, announce, clockTime, droppedMark, readableStamp, chip, onLeave, showError, parseJson, strategyKey } from "./page.js";

let view = null;      // the last snapshot from the server
let source = null;    // the EventSource
let presets = { presets: [], pause_ms: 0 }; // the known stories, from the API
let story = null;     // the preset being told: { name, preset, next, busy, auto, error }
let storyTimer = null; // the pause before the next step, when playing on its own
let key = "x";        // the key the page writes and shows; kept across redraws
let keyTimer = null;  // a pending read of the key's state
const log = [];       // recent lines for the event log
const LOG_LINES = 60;

export async function showLab() {
  [view, presets] = await Promise.all([api("/api/lab"), api("/api/presets")]);
  render();
  source = new EventSource("/api/lab/events");
  source.addEventListener("snapshot", (event) => { view = parseJson(event.data); render(); });
  source.addEventListener("status", (event) => { if (view) { view.replicas = parseJson(event.data).replicas; renderReplicas(); } });
  source.addEventListener("counts", (event) => {
    if (!view) return;
    const { type, ...counts } = parseJson(event.data);
    view.counts = counts;
    renderVerdict();
    readKey();
  });
  source.addEventListener("lease", (event) => {
    if (!view) return;
    const { type, ...lease } = parseJson(event.data);
    view.lease = lease;
    renderVerdict();
    renderWorkers();
  });
  source.addEventListener("write", (event) => {
    const write = parseJson(event.data);
    const outcome = write.outcome === "ok" ? "acknowledged" : write.outcome === "fail" ? "refused" : "no answer";
    addLog(`${clockTime(write.complete_ns)}  operation ${write.item} on ${write.key}, replica ${write.replica}: ${write.bucket} ${outcome}`);
    if (write.key === key) readKey();
  });
  source.addEventListener("replicated", (event) => {
    const moved = parseJson(event.data);
    addLog(`replica ${moved.replica} now has replica ${moved.origin}'s first ${moved.through} writes`);
  });
  source.addEventListener("drop", (event) => {
    const drop = parseJson(event.data);
    if (view) { view.drops.push(drop); renderVerdict(); }
    addLog(`✗ DROPPED: ${drop.bucket} lost operation ${drop.victim.item} on ${drop.key} (${drop.cause.replace("realtime", "real-time")})`);
    announce(`${drop.bucket} silently dropped operation ${drop.victim.item}`);
  });
  const keys = (event) => {
    if (!story || event.target.matches("input, select, textarea") || event.altKey || event.ctrlKey || event.metaKey) return;
    if (["ArrowRight", "PageDown", "n"].includes(event.key)) { event.preventDefault(); if (!story.auto) playStep(); }
    else if (event.key === " ") { event.preventDefault(); togglePlay(); }
  };
  document.addEventListener("keydown", keys);
  onLeave(() => { source.close(); clearTimeout(storyTimer); clearTimeout(keyTimer); document.removeEventListener("keydown", keys); if (story) story.auto = false; });
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
  main.append(el("div", { class: "lab-top" },
    el("section", { id: "presets", class: "story-panel", "aria-label": "Presets" }),
    el("section", { id: "verdict-panel", class: "verdict-panel", "aria-label": "What each strategy kept" })));
  renderPresets();
  renderVerdict();
  if (!view.running) {
    const { min_replicas: fewest, max_replicas: most } = view.limits;
    const counts = Array.from({ length: most - fewest + 1 }, (_, index) => fewest + index);
    const count = el("select", { id: "replica-count", "aria-label": "Replicas" }, counts.map((n) => el("option", { value: n }, n)));
    main.append(
      el("p", {}, "Start a cluster of real replica processes on this machine, or choose a story above. Each replica holds one bucket per strategy; every write goes to all of them, so the strategies live through the same story side by side."),
      el("p", { class: "controls" }, el("label", { for: "replica-count" }, "Replicas"), count,
        el("button", { id: "start", class: "primary", onclick: () => act(() => api("/api/lab/start", "POST", { replicas: Number(count.value) })) }, "Start cluster")));
    return;
  }
  const keyInput = el("input", { id: "key", value: key, size: 8, "aria-label": "Key to write and watch",
    onchange: () => { key = keyInput.value.trim() || "x"; renderKey(null); readKey(); } });
  const limits = view.limits;
  const rate = el("input", { id: "rate", type: "number", min: limits.workload_rate_step, max: limits.max_workload_rate,
    step: limits.workload_rate_step, value: view.workload_rate ?? limits.default_workload_rate, "aria-label": "Operations per second" });
  main.append(
    el("p", { class: "controls" },
      el("button", { id: "stop", onclick: () => act(() => api("/api/lab/stop", "POST")) }, "Stop cluster"),
      el("label", { for: "key" }, "Key"), keyInput,
      el("label", { for: "rate" }, "Workload (operations/s)"), rate,
      view.workload_rate
        ? el("button", { id: "workload", onclick: () => act(() => api("/api/lab/workload", "PUT", { rate: null })) }, "Stop workload")
        : el("button", { id: "workload", onclick: () => act(() => api("/api/lab/workload", "PUT", { rate: Number(rate.value) })) }, "Start workload")),
    el("h2", {}, "Replicas"),
    el("div", { class: "cards", id: "replicas" }),
    el("h2", {}, "Lease workers"),
    el("div", { id: "workers" }),
    el("h2", { id: "key-heading" }, `What each replica holds of ${key}`),
    el("div", { id: "key-state" }),
    el("h2", {}, "Links"),
    linksTable(),
    partitionControls(),
    el("h2", {}, "Events"),
    el("div", { class: "log", id: "log", role: "log", "aria-label": "Writes and replication as they happen" }),
  );
  renderReplicas();
  renderWorkers();
  readKey();
  addLog("watching the cluster");
}

/** The clock gauge's scales: the smallest that holds the offset is drawn. */
const GAUGE_SCALES = [[1000, "1 s"], [10000, "10 s"], [60000, "1 min"], [600000, "10 min"], [3600000, "1 h"], [86400000, "1 day"]];

/** The clock's offset from true time, on the smallest scale that holds it. */
function offsetGauge(offsetMs) {
  const [limit, name] = GAUGE_SCALES.find(([limit]) => Math.abs(offsetMs) <= limit) ?? GAUGE_SCALES[GAUGE_SCALES.length - 1];
  const x = 150 + Math.max(-1, Math.min(1, offsetMs / limit)) * 130;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 300 46");
  svg.setAttribute("width", "300");
  svg.setAttribute("height", "46");
  svg.setAttribute("class", "gauge");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `clock offset ${offsetMs.toFixed(1)} ms against true time, on a scale of ±${name}`);
  svg.innerHTML = `<line x1="20" y1="14" x2="280" y2="14" stroke="#888" stroke-width="2"/>
    <line x1="150" y1="3" x2="150" y2="25" stroke="#111" stroke-width="2"/>
    <text x="150" y="43" font-size="14" text-anchor="middle">true time</text>
    <text x="4" y="43" font-size="14">−${name}</text><text x="296" y="43" font-size="14" text-anchor="end">+${name}</text>
    <circle cx="${x}" cy="14" r="7" fill="#0b4f9c"/>`;
  return svg;
}

/**
 * What a replica holds, in operations: "2 operations from replica 1, 1
 * from replica 3". An operation writes one write per strategy, and a
 * replica numbers its writes in order, so its high-water mark divided by
 * the strategies counts operations.
 */
function holds(highWater) {
  const perOperation = Math.max(1, view?.buckets?.length ?? 1);
  const parts = Object.entries(highWater || {}).filter(([, n]) => n > 0).map(([origin, n], index) => {
    // Whole operations only: one still arriving, strategy by strategy, is said so.
    const operations = Math.floor(n / perOperation);
    const noun = index > 0 ? "" : operations === 1 ? "operation " : "operations ";
    const arriving = n % perOperation ? " (and one arriving)" : "";
    return `${operations} ${noun}from replica ${origin}${arriving}`;
  });
  return parts.length ? parts.join(", ") : "nothing yet";
}

/** A clock offset as a person says it: "+3.0 ms", "+60 s", "−2 min". */
function offsetText(ms) {
  const sign = ms >= 0 ? "+" : "−";
  const size = Math.abs(ms);
  if (size >= 120000) return `${sign}${(size / 60000).toFixed(size % 60000 === 0 ? 0 : 1)} min`;
  if (size >= 10000) return `${sign}${(size / 1000).toFixed(size % 1000 === 0 ? 0 : 1)} s`;
  return `${sign}${size.toFixed(1)} ms`;
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
  const clock = (body) => act(() => api(`/api/lab/replicas/${id}/clock`, "PUT", body));
  const paused = replica.paused;
  return el("section", { class: `card${paused ? " paused" : ""}`, id: `replica-${id}`, "aria-label": `Replica ${id}`, title: replica.pid ? `process ${replica.pid}` : null },
    el("h3", {}, `Replica ${id}`, paused ? " (paused)" : "", replica.reachable || paused ? "" : " (not answering)"),
    el("dl", {},
      el("dt", {}, "true time"), el("dd", {}, clockTime(replica.true_ns)),
      el("dt", {}, "its clock"), el("dd", { class: "physical" }, paused ? "not read while paused" : clockTime(replica.physical_ns)),
      el("dt", {}, "ahead by"), el("dd", { class: "offset", title: `${replica.offset_ms.toFixed(3)} ms` }, offsetText(replica.offset_ms)),
      el("dt", {}, "holds"), el("dd", { class: "holds" }, holds(replica.high_water))),
    offsetGauge(replica.offset_ms),
    el("div", { class: "controls" }, offsetLabel, offset, el("button", { class: "set-offset", onclick: () => clock({ offset_ms: Number(offset.value) }) }, "Set offset")),
    el("div", { class: "controls" }, driftLabel, drift, el("button", { onclick: () => clock({ drift_ppm: Number(drift.value) }) }, "Set drift")),
    el("div", { class: "controls" }, stepLabel, step, el("button", { onclick: () => clock({ step_ms: Number(step.value) }) }, "Step clock"),
      el("button", { class: "strobe", title: "Flip between the clock and the clock plus the step, every 50 ms, for 10 s",
        onclick: () => clock({ strobe_ms: Number(step.value), strobe_period_ms: STROBE_PERIOD_MS, strobe_for_ms: STROBE_FOR_MS }) }, "Strobe")),
    el("div", { class: "controls" },
      el("button", { class: "write", onclick: () => act(() => api("/api/lab/write", "POST", { replica: id, key })) }, `Write ${key} here`),
      paused
        ? el("button", { class: "resume", onclick: () => act(() => api(`/api/lab/replicas/${id}/resume`, "POST")) }, "▶ Resume")
        : el("button", { class: "pause", onclick: () => act(() => api(`/api/lab/replicas/${id}/pause`, "POST")) }, "Pause")));
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

/** Asks for the key's state soon (at most a few times a second). */
function readKey() {
  if (keyTimer || !view?.running) return;
  keyTimer = setTimeout(async () => {
    keyTimer = null;
    try {
      renderKey(await api(`/api/lab/keys/${encodeURIComponent(key)}`));
    } catch (error) {
      renderKey({ error: error.message });
    }
  }, 200);
}

/** The most items of a value shown; the rest are counted. */
const ITEMS_SHOWN = 6;

function valueText(value) {
  if (!Array.isArray(value)) return JSON.stringify(value);
  if (value.length <= ITEMS_SHOWN) return `[${value.join(", ")}]`;
  return `[… ${value.slice(-ITEMS_SHOWN).join(", ")}] (${value.length} items)`;
}

/** Rows: buckets; columns: replicas; cells: the siblings each holds of the key. */
function renderKey(state) {
  const box = document.getElementById("key-state");
  const heading = document.getElementById("key-heading");
  if (heading) heading.textContent = `What each replica holds of ${key}`;
  if (!box) return;
  if (!state) { box.replaceChildren(el("p", {}, "Reading…")); return; }
  if (state.error) { box.replaceChildren(el("p", { class: "error" }, "✗ ", state.error)); return; }
  const ids = view.replicas.map((replica) => replica.id);
  const note = state.unread.length ? el("p", {}, `Not read: replica ${state.unread.join(", ")} (paused or not answering).`) : "";
  box.replaceChildren(note, el("table", { id: "key-table", class: "fit" },
    el("caption", { class: "visually-hidden" }, `Siblings of ${key} per strategy and replica`),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "strategy"), ids.map((id) => el("th", { scope: "col" }, `replica ${id}`)))),
    el("tbody", {}, view.buckets.map((bucket) => el("tr", {},
      el("th", { scope: "row" }, chip(bucket, view.colours)),
      ids.map((id) => {
        const siblings = state.buckets[bucket]?.[id];
        if (siblings === undefined) return el("td", {}, "–");
        if (siblings.length === 0) return el("td", {}, "nothing yet");
        return el("td", { class: siblings.length > 1 ? "has-siblings" : null },
          siblings.length > 1 ? el("div", { class: "siblings" }, `${siblings.length} siblings`) : null,
          siblings.map((sibling) => el("div", {}, valueText(sibling.value), " ", el("small", {}, readableStamp(sibling.stamp)))));
      }))))));
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

/** Every link: cut or heal it, and slow it down or make it lose pushes (a slow node looks dead). */
function linksTable() {
  const ids = view.replicas.map((replica) => replica.id);
  const rows = [];
  for (const a of ids) for (const b of ids) if (a < b) {
    const cut = view.cuts.some(([x, y]) => x === a && y === b);
    const slow = view.slow_links.find((link) => link.a === a && link.b === b) ?? { delay_ms: 0, loss: 0 };
    const delay = el("input", { id: `delay-${a}-${b}`, type: "number", min: 0, max: view.limits.max_link_delay_ms, step: 100, value: slow.delay_ms, "aria-label": `Delay on link ${a} to ${b}, ms` });
    const loss = el("input", { id: `loss-${a}-${b}`, type: "number", min: 0, max: 1, step: 0.1, value: slow.loss, "aria-label": `Share lost on link ${a} to ${b}` });
    rows.push(el("tr", {},
      el("th", { scope: "row" }, `${a} ↔ ${b}`),
      el("td", {}, cut ? droppedMark("cut") : "connected",
        slow.delay_ms > 0 || slow.loss > 0 ? ` (${slow.delay_ms} ms delay, ${Math.round(slow.loss * 100)}% lost)` : ""),
      el("td", {}, el("button", { class: cut ? "heal" : "cut", "aria-label": `${cut ? "Heal" : "Cut"} link ${a} to ${b}`,
        onclick: () => act(() => api("/api/lab/links", "PUT", { a, b, cut: !cut })) }, cut ? "Heal" : "Cut")),
      el("td", { class: "controls" }, el("label", { for: `delay-${a}-${b}` }, "delay ms"), delay,
        el("label", { for: `loss-${a}-${b}` }, "loss"), loss,
        el("button", { class: "slow", onclick: () => act(() => api("/api/lab/links", "PUT", { a, b, delay_ms: Number(delay.value), loss: Number(loss.value) })) }, "Set"))));
  }
  return el("table", { id: "links" }, el("tbody", {}, rows));
}

/** The lease workers: start them, pause and resume each (DDIA Figures 8-4 and 8-5). */
function renderWorkers() {
  const box = document.getElementById("workers");
  if (!box || !view) return;
  if (!view.lease) {
    box.replaceChildren(
      el("p", {}, "Two lease workers take turns adding one to a protected value under a lock service's lease; pause the one holding it and see whether its late write gets in."),
      el("p", { class: "controls" }, el("button", { id: "lease-start", onclick: () => act(() => api("/api/lab/lease/start", "POST")) }, "Start lease workers")));
    return;
  }
  box.replaceChildren(el("p", { class: "controls" }, view.lease.workers.map((worker) => worker.paused
    ? el("button", { id: `worker-${worker.id}-resume`, class: "primary", onclick: () => act(() => api(`/api/lab/workers/${worker.id}/resume`, "POST")) }, `Resume worker ${worker.id}`)
    : el("button", { id: `worker-${worker.id}-pause`, onclick: () => act(() => api(`/api/lab/workers/${worker.id}/pause`, "POST")) }, `Pause worker ${worker.id}`))),
    el("p", { class: "note" }, `A lease lasts ${view.lease.ttl_ms / 1000} s by the lock service's clock; each round a worker checks its lease, reads the value, works ${view.lease.work_ms / 1000} s and writes the value plus one.`));
}

/** Who holds each lease, who believes it does, and what the writes did. */
function leaseTable(checks) {
  const told = checks.size > 0;
  const holder = (h) => el("div", {}, `worker ${h.worker} (${h.token})`);
  return el("table", { id: "lease-table", class: "verdict-table fit" },
    el("thead", {}, el("tr", {}, ["guard", "held by, says the service", "believed by", "value", "refused", "lost", told ? "story" : null]
      .filter(Boolean).map((name) => el("th", { scope: "col" }, name)))),
    el("tbody", {}, view.lease.guards.map((row) => {
      const check = checks.get(row.guard);
      const two = row.believers.length > 1;
      return el("tr", { id: `guard-${row.guard}`, class: row.lost_updates ? "lost" : null, title: row.last_write ?? "" },
        el("th", { scope: "row" }, row.guard),
        el("td", {}, row.service ? holder(row.service) : "nobody"),
        el("td", { class: two ? "dropped" : null, title: two ? "two workers believe they hold the lease at once" : null },
          row.believers.length ? row.believers.map(holder) : "nobody"),
        el("td", { class: "number" }, row.value ?? "?"),
        el("td", { class: "number" }, row.fenced),
        el("td", { class: "number" }, row.lost_updates ? droppedMark(`${row.lost_updates}`) : "0"),
        told ? el("td", { class: `story-check ${check?.holds ? "kept" : "dropped"}`,
          title: check ? `the story says it ${check.claimed}; the lab found ${check.found}` : null },
          check ? (check.holds ? "✓ as told" : `✗ not as told: ${check.found}`) : "") : "");
    })));
}

/** Causes, as the oracle names them. */
const CAUSES = { causality: "causality violation", realtime: "real-time violation", concurrent: "concurrent overwrite" };

/** Every strategy's counts, one row each, beside the story. */
function renderVerdict() {
  const box = document.getElementById("verdict-panel");
  if (!box || !view) return;
  const counts = view.counts || { strategies: {} };
  const checks = new Map((view.story_check ?? []).map((check) => [check.bucket, check]));
  const told = checks.size > 0;
  const rows = view.buckets.map((bucket) => {
    const totals = counts.strategies[bucket] || {};
    const drops = view.drops.filter((drop) => drop.bucket === bucket);
    const causes = Object.entries(CAUSES).filter(([cause]) => totals[cause])
      .map(([cause, name]) => `${totals[cause]} ${name}${totals[cause] === 1 ? "" : "s"}`);
    if (totals.siblings) causes.push(`${totals.siblings} reads with siblings`);
    const check = checks.get(bucket);
    return el("tr", { class: drops.length ? "lost" : null, id: `strategy-${bucket}`, "aria-label": `Strategy ${bucket}` },
      el("th", { scope: "row" }, chip(bucket, view.colours)),
      el("td", { class: "number" }, el("span", { class: "count acked" }, totals.acked ?? 0)),
      el("td", { class: "number" }, el("span", { class: `count drops ${drops.length ? "dropped" : "kept"}` }, drops.length ? `✗ ${drops.length}` : "0")),
      el("td", { class: "causes" }, causes.join(", ")),
      told ? el("td", { class: `story-check ${check?.holds ? "kept" : "dropped"}`,
        title: check ? `the story says it ${check.claimed}; the oracle found it ${check.found}` : null },
        check ? (check.holds ? "✓ as told" : `✗ not as told: ${check.found}`) : "") : "");
  });
  if (view.lease) {
    const last = view.lease.guards.map((row) => row.last_write ? `${row.guard}: ${row.last_write}` : "").filter(Boolean);
    box.replaceChildren(
      el("h2", {}, "Who holds the lease"),
      leaseTable(checks),
      el("p", { id: "lease-last", class: "note" }, "Tokens in brackets; lost counts acknowledged increments the value lacks. ",
        last.length ? `Last writes: ${last.join("; ")}.` : "No write yet."));
    return;
  }
  const drops = view.drops.slice(-12).reverse();
  box.replaceChildren(
    el("h2", {}, "What each strategy kept"),
    view.running ? "" : el("p", {}, "No cluster is running."),
    el("table", { id: "columns", class: "verdict-table fit" },
      el("thead", {}, el("tr", {}, ["strategy", "acknowledged", "dropped", "why", told ? "story" : null]
        .filter(Boolean).map((name) => el("th", { scope: "col" }, name)))),
      el("tbody", {}, rows)),
    strategyKey(view.key),
    drops.length ? el("details", { id: "drop-details" }, el("summary", {}, `Why each write was dropped (${view.drops.length})`),
      el("ul", {}, drops.map((drop) => el("li", { class: "drop" },
        chip(drop.bucket, view.colours), " ", droppedMark(`operation ${drop.victim.item} on ${drop.key}`), ` (${CAUSES[drop.cause]}): ${drop.rule}`)))) : "",
    el("p", { id: "counts-note", class: "note" },
      counts.waiting ? `${counts.waiting}. ` : "",
      `A drop counts once its key has settled: nothing in flight, every replica holding the same writes. Keys not settled yet: ${counts.unsettled ?? 0}.`));
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
  const buttons = el("p", { class: "controls" },
    presets.presets.map(({ name, preset }) => el("button", { class: `preset${story?.name === name ? " primary" : ""}`,
      "data-name": name, onclick: () => choose(name, preset) }, preset.title)));
  if (!story) {
    box.replaceChildren(el("h2", {}, "Tell a story"), buttons,
      el("p", {}, "Each story starts a fresh cluster and plays on real processes, one step per click, with a line to say at each."));
    return;
  }
  box.replaceChildren(el("h2", {}, story.preset.title),
    el("details", { class: "other-stories" }, el("summary", {}, "Another story"), buttons));
  const { preset, next, busy, auto } = story;
  const steps = preset.step;
  const over = next >= steps.length;
  // The line to say: the step just played, or the first before any.
  const shown = over ? steps.length - 1 : Math.max(0, next - (busy ? 0 : 1));
  const line = next === 0 && !busy ? preset.summary : steps[shown].say;
  box.append(
    el("p", { id: "story-say", class: "say" }, line),
    el("p", { class: "controls" },
      el("button", { id: "story-next", class: "primary", disabled: busy || over || auto, onclick: () => playStep() },
        over ? "Told" : `Play step ${next + 1} of ${steps.length}`),
      auto
        ? el("button", { id: "story-pause", onclick: togglePlay }, "❚❚ Pause after this step")
        : el("button", { id: "story-play", disabled: busy || over, onclick: togglePlay }, "Play to the end"),
      el("span", { id: over ? "story-done" : "story-status", "aria-live": "polite" },
        over ? "Told: the counts are the oracle's verdict."
          : busy ? `Playing step ${next + 1}…` : next === 0 ? "Press → for the first step." : `Step ${next} done.`),
      el("span", { class: "keys" }, "keys: → next, space plays or pauses")),
    el("details", { class: "story-steps" }, el("summary", {}, "Every step of the story"),
      el("ol", { id: "story-steps", class: "story" }, steps.map((step, index) =>
        el("li", { class: index < next ? "done" : index === next ? "current" : "", "aria-current": index === next ? "step" : false },
          index < next ? "✓ " : index === next ? "▶ " : "", step.say)))),
    story.error ? el("p", { class: "error", role: "alert" }, "✗ ", story.error) : "");
}

function togglePlay() {
  if (!story) return;
  if (story.auto) { story.auto = false; clearTimeout(storyTimer); renderPresets(); }
  else { story.auto = true; playStep(); }
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
