// Step through a scripted scenario (DDIA Figure 8-3 first): the step's line,
// what each strategy has lost so far, and a space-time diagram, one lane per
// replica, on one screen; every strategy's state below.
import { api, el, page, announce, droppedMark, chip, onLeave, strategyKey } from "./page.js";

export async function showScenarios() {
  const main = page("Step through a scenario");
  // The search's options are extra: without them the list still shows.
  const [{ scenarios }, search] = await Promise.all([api("/api/scenarios"), api("/api/explore").catch(() => null)]);
  main.append(el("ul", { class: "scenario-list" }, scenarios.map((scenario) =>
    el("li", {}, el("a", { href: `#/scenario/${encodeURIComponent(scenario.name)}` }, scenario.title)))));
  if (!search) return;
  // The search: every story within small bounds, shortest first.
  const strategy = el("select", { id: "smallest-strategy", "aria-label": "strategy" },
    search.strategies.map((name) => el("option", { value: name }, name)));
  const cause = el("select", { id: "smallest-cause", "aria-label": "what counts" },
    search.causes.map((one) => el("option", { value: one.name }, one.words)));
  const find = el("button", { id: "find-smallest", class: "primary", onclick: () => {
    location.hash = `#/smallest/${encodeURIComponent(strategy.value)}/${encodeURIComponent(cause.value)}`;
  } }, "Find the smallest story");
  main.append(
    el("h2", {}, "Find the smallest story where a strategy loses a write"),
    el("p", {}, `The lab tries every story within ${search.bounds}, shortest first, and plays the first one in which the strategy does what you ask, or tells you that none does.`),
    el("div", { class: "controls" }, strategy, cause, find));
}

/** Searches for the smallest story, then steps through it (or says none exists). */
export async function showSmallest(strategy, cause) {
  const main = page("The smallest story");
  const waiting = el("p", { id: "searching", "aria-live": "polite" }, `Searching every story for ${strategy}, shortest first…`);
  main.append(waiting);
  const asked = location.hash;
  const found = await api(`/api/explore/${encodeURIComponent(strategy)}?cause=${encodeURIComponent(cause)}`);
  if (location.hash !== asked) return; // the class moved on while it searched
  if (found.verdict === "found") return showTrace(found.trace);
  waiting.remove();
  main.append(
    el("p", { id: "none-found", class: "summary" }, found.words),
    el("p", {}, el("a", { href: "#/scenarios" }, "← the scenarios, and another search")));
}

/** How long a step stays on screen when the story plays on its own, ms. */
const PLAY_STEP_MS = 1500;
/** Keys a presenter's clicker or keyboard sends for the next and previous step. */
const NEXT_KEYS = ["ArrowRight", "PageDown", "n"];
const BACK_KEYS = ["ArrowLeft", "PageUp", "p"];

/**
 * The controls every step-through shares: restart, back, next, play, to the
 * end, a step counter and the presenter's keys. `show(step)` draws a step;
 * `redraw()` draws the current one again when the window is resized.
 * Returns the controls' row and `go(step)`.
 */
function stepper(count, show, redraw) {
  let current = 0;
  let timer = null;
  const counter = el("span", { id: "step-counter", "aria-live": "polite" });
  const back = el("button", { id: "back", onclick: () => { stop(); go(current - 1); } }, "◀ Back");
  const next = el("button", { id: "next", class: "primary", onclick: () => { stop(); go(current + 1); } }, "Next ▶");
  const play = el("button", { id: "play", onclick: () => (timer ? stop() : start()) }, "Play");
  const end = el("button", { id: "to-end", onclick: () => { stop(); go(count - 1); } }, "To the end ⇥");
  const restart = el("button", { id: "restart", onclick: () => { stop(); go(0); } }, "⇤ Restart");
  function start() {
    if (current >= count - 1) go(0);
    play.textContent = "❚❚ Pause";
    timer = setInterval(() => {
      if (current >= count - 1) stop();
      else go(current + 1);
    }, PLAY_STEP_MS);
  }
  function stop() {
    clearInterval(timer);
    timer = null;
    play.textContent = "Play";
  }
  function go(step) {
    current = Math.max(0, Math.min(count - 1, step));
    counter.textContent = `Step ${current + 1} of ${count}`;
    back.disabled = current === 0;
    next.disabled = end.disabled = current === count - 1;
    show(current);
  }
  const keys = (event) => {
    if (event.target.matches("input, select, textarea") || event.altKey || event.ctrlKey || event.metaKey) return;
    let handled = true;
    if (NEXT_KEYS.includes(event.key)) { stop(); go(current + 1); }
    else if (BACK_KEYS.includes(event.key)) { stop(); go(current - 1); }
    else if (event.key === " ") { if (timer) stop(); else start(); }
    else if (event.key === "Home") { stop(); go(0); }
    else if (event.key === "End") { stop(); go(count - 1); }
    else handled = false;
    if (handled) event.preventDefault(); // no scrolling: the keys are the story's
  };
  const resize = () => redraw(current);
  document.addEventListener("keydown", keys);
  window.addEventListener("resize", resize);
  onLeave(() => { stop(); document.removeEventListener("keydown", keys); window.removeEventListener("resize", resize); });
  const row = el("div", { class: "controls story-controls" }, restart, back, next, play, end, counter,
    el("span", { class: "keys" }, "keys: ← →, space plays, Home, End"));
  return { row, go };
}

export async function showScenario(name) {
  const trace = await api(`/api/scenarios/${encodeURIComponent(name)}`);
  if (trace.kind === "lease") return showLeaseStory(trace);
  showTrace(trace);
}

/** A played story, step by step: the one telling for written and found stories. */
function showTrace(trace) {
  const main = page(trace.title);
  main.classList.add("story-page");
  const say = el("p", { class: "say", id: "say" });
  const verdict = el("div", { id: "verdict", class: "verdict-bar", "aria-live": "polite" });
  const diagram = el("div", { id: "diagram" });
  const state = el("div", { id: "state" });
  const show = (current) => {
    const shown = trace.steps[current];
    say.textContent = shown.say;
    verdict.replaceChildren(...verdictBar(trace, current));
    diagram.replaceChildren(drawDiagram(trace, current, diagram.clientWidth || main.clientWidth));
    state.replaceChildren(stateTable(trace, shown));
    announce(shown.say);
  };
  const { row, go } = stepper(trace.steps.length, show,
    (current) => diagram.replaceChildren(drawDiagram(trace, current, diagram.clientWidth)));
  main.append(
    row, say, verdict, diagram,
    el("h2", {}, "What each replica holds after this step"), state,
    el("p", { class: "summary" }, trace.summary),
    strategyKey(trace.key));
  go(0);
}

/**
 * A lease story (DDIA Figures 8-4 and 8-5): the golden transcript's lines
 * a step each, and the lease timeline drawn by the server up to the step's
 * moment; at the last step, the oracle's verdict per guard.
 */
function showLeaseStory(trace) {
  const main = page(trace.title);
  main.classList.add("story-page");
  const say = el("p", { class: "say", id: "say" });
  const verdict = el("div", { id: "verdict", class: "verdict-bar", "aria-live": "polite" });
  const plot = el("img", { id: "lease-timeline", class: "plot", alt: "The lease timeline up to this step" });
  const figure = el("figure", { id: "diagram" }, plot);
  const lines = trace.lines;
  const draw = (current) => {
    const width = Math.round(figure.clientWidth || main.clientWidth);
    const at = lines[current].at_ms;
    plot.src = `${trace.timeline}?width=${width}&upto_ms=${at}`;
  };
  const show = (current) => {
    const line = lines[current];
    say.textContent = `${(line.at_ms / 1000).toFixed(3)} s: ${line.say}`;
    const last = current === lines.length - 1;
    verdict.replaceChildren(...(last
      ? trace.verdicts.map((words) => el("div", { class: `verdict-item ${/ 0 update\(s\) lost/.test(words) ? "kept" : "lost"}` }, words))
      : [el("div", { class: "verdict-item" }, `${trace.setup}. The verdict comes at the last step.`)]));
    draw(current);
    announce(say.textContent);
  };
  const { row, go } = stepper(lines.length, show, draw);
  main.append(row, say, verdict, figure, strategyKey(trace.key, false, "guards"));
  go(0);
}

/** The most lost writes a bucket's verdict names one by one; more are summed up. */
const SHOWN_LOST = 2;

/** Which step made each write (by bucket and write id), and with what value. */
function writesOf(trace) {
  const made = new Map();
  for (const step of trace.steps) {
    for (const write of step.writes) made.set(`${write.bucket} ${write.write_id}`, { step, write });
  }
  return made;
}

/** A write as a class names it: the step's own words, not its id. */
function writeName(step, write) {
  const who = step.client ? `client ${step.client}'s` : "the";
  const what = step.action === "increment" ? "increment" : step.action === "add" ? "addition" : "write";
  return `${who} ${what} ${step.key} = ${JSON.stringify(write.value)} (step ${step.index + 1})`;
}

/**
 * Per bucket: what no replica holds a trace of now, and what came back
 * (a write gone from every replica whose items a later write carried,
 * because its client had read them before they went).
 */
function verdictBar(trace, upTo) {
  const made = writesOf(trace);
  const step = trace.steps[upTo];
  const before = upTo > 0 ? trace.steps[upTo - 1].lost : {};
  const last = upTo === trace.steps.length - 1;
  // Strategies with the same verdict share one line, so a long story's
  // verdict stays a few lines tall.
  const lines = new Map();
  for (const bucket of trace.buckets) {
    const lost = step.lost[bucket] || [];
    const back = (before[bucket] || []).filter((id) => !lost.includes(id));
    const named = (id) => { const found = made.get(`${bucket} ${id}`); return found ? writeName(found.step, found.write) : `write ${id}`; };
    const stepOf = (id) => made.get(`${bucket} ${id}`)?.step.index + 1;
    const gone = last ? "lost" : "gone from every replica";
    const said = lost.length === 0 ? "✓ nothing lost"
      : lost.length <= SHOWN_LOST ? lost.map((id) => `✗ ${gone}: ${named(id)}`).join(" ")
        : `✗ ${lost.length} writes ${gone}, made at steps ${stepOf(lost[0])} to ${stepOf(lost[lost.length - 1])}; the latest: ${named(lost[lost.length - 1])}`;
    const came = back.length === 0 ? "" : back.length <= SHOWN_LOST ? `↺ back: ${back.map(named).join("; ")}` : `↺ ${back.length} writes back`;
    const text = `${said}|${came}`;
    if (!lines.has(text)) lines.set(text, { buckets: [], lost: lost.length, said, came });
    lines.get(text).buckets.push(bucket);
  }
  return [...lines.values()].map(({ buckets, lost, said, came }) =>
    el("div", { class: `verdict-item ${lost ? "lost" : "kept"}`, "data-buckets": buckets.join(" ") },
      buckets.map((bucket) => chip(bucket, trace.colours)),
      el("span", { class: lost ? "dropped" : "kept" }, said),
      came ? el("span", { class: "back", title: "gone from every replica before, now carried by a later write whose client had read it" }, came) : ""));
}

const LANE_GAP = 70;
const LEFT = 100;
/** Past this many steps the diagram shows the latest ones and sums up the rest. */
const WINDOW = 16;

function label(step) {
  if (step.action === "write") return `${step.key} := ${JSON.stringify(step.value)}`;
  if (step.action === "increment") return `${step.key} := ${step.key} + 1`;
  if (step.action === "add") return `${step.key} += an item`;
  if (step.action === "clock") return `clock ${step.offset_ms >= 0 ? "+" : ""}${step.offset_ms} ms`;
  return "";
}

function escape(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

/**
 * The space-time diagram up to step `upTo`, `width` pixels wide with its
 * text at the sizes it names (never scaled down). Lanes are replicas and
 * x is true time. A long story (more than WINDOW steps) shows its latest
 * steps evenly spaced, after a band that says how many came before.
 */
function drawDiagram(trace, upTo, width) {
  width = Math.max(600, Math.floor(width));
  const first = upTo >= WINDOW ? upTo - WINDOW + 1 : 0;
  const shown = trace.steps.slice(first, upTo + 1);
  const windowed = trace.steps.length > WINDOW;
  const right = width - 40;
  const band = first > 0 ? 150 : 0;
  const start = LEFT + band;
  const span = Math.max(...trace.steps.map((step) => step.at_ms), 1);
  const x = windowed
    ? (index) => start + ((index - first + 0.5) / WINDOW) * (right - start)
    : (index) => start + (trace.steps[index].at_ms / span) * (right - start - 60);
  const y = (replica) => 44 + (replica - 1) * LANE_GAP;
  const height = 44 + trace.replicas * LANE_GAP - 10;
  const parts = [`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#111"/></marker></defs>`];
  for (let replica = 1; replica <= trace.replicas; replica++) {
    parts.push(`<line x1="${LEFT - 10}" y1="${y(replica)}" x2="${right}" y2="${y(replica)}" stroke="#888" stroke-width="2"/>`,
      `<text x="8" y="${y(replica) + 6}" font-size="18" font-weight="bold">node ${replica}</text>`);
  }
  if (first > 0) {
    parts.push(`<rect x="${LEFT}" y="16" width="${band - 16}" height="${height - 24}" fill="#e8e8e8"/>`,
      `<text x="${LEFT + (band - 16) / 2}" y="${height / 2}" font-size="15" text-anchor="middle">${first} earlier</text>`,
      `<text x="${LEFT + (band - 16) / 2}" y="${height / 2 + 20}" font-size="15" text-anchor="middle">steps</text>`);
  }
  shown.forEach((step, offset) => {
    const index = first + offset;
    const now = index === upTo;
    const colour = now ? "#0b4f9c" : "#111";
    const stroke = now ? 4 : 2;
    if (step.action === "replicate") {
      for (const from of step.delivered_steps) {
        const origin = trace.steps[from];
        const fromX = from >= first ? x(from) : start - 8;
        parts.push(`<line x1="${fromX}" y1="${y(origin.replica)}" x2="${x(index)}" y2="${y(step.to)}" stroke="${colour}" stroke-width="${stroke}" marker-end="url(#arrow)"/>`);
      }
      if (step.delivered_steps.length === 0 && now) {
        parts.push(`<text x="${x(index)}" y="${y(step.to) - 12}" font-size="15" text-anchor="middle">nothing new from node ${step.from}</text>`);
      }
    } else {
      parts.push(`<circle cx="${x(index)}" cy="${y(step.replica)}" r="${now ? 9 : 7}" fill="${colour}"/>`);
      // Every label of a short story; of a long one, only the current step's.
      if (now || !windowed) {
        const clock = step.clocks.find((c) => c.replica === step.replica);
        const reading = clock ? `clock ${(trace.start_second + clock.physical_ms / 1000).toFixed(3)}` : "";
        const lifted = offset % 2 === 1 && !now ? 18 : 0; // neighbours' labels alternate heights
        // Near the right edge a label ends at its point, so it stays inside the frame.
        const anchor = x(index) > width - 180 ? "end" : "middle";
        parts.push(`<text x="${x(index)}" y="${y(step.replica) - 14 - lifted}" font-size="17" text-anchor="${anchor}" fill="${colour}">${escape(label(step))}</text>`,
          `<text x="${x(index)}" y="${y(step.replica) + 30}" font-size="17" text-anchor="${anchor}">${escape(reading)}</text>`);
      }
    }
  });
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("class", "diagram");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `Space-time diagram, steps ${first + 1} to ${upTo + 1}`);
  svg.innerHTML = parts.join("");
  return svg;
}

/** A stamp for the story: times as seconds past the minute (42.004 s), as in the figure. */
function storyStamp(value) {
  const part = (item) => typeof item === "bigint" || (typeof item === "number" && item > 1e15)
    ? `${(Number(BigInt(item) % 60000000000n) / 1e9).toFixed(3)} s`
    : String(item);
  if (Array.isArray(value)) return `(${value.map(part).join(", ")})`;
  if (value === null || value === undefined) return "–";
  return JSON.stringify(value, (key, item) => (typeof item === "bigint" ? Number(item) : item));
}

/** A cell shows this many siblings at most; the rest are counted. */
const SIBLINGS_SHOWN = 4;

/** Rows: replicas; columns: strategies; cells: what each holds, with stamps. */
function stateTable(trace, step) {
  const rows = [];
  for (let replica = 1; replica <= trace.replicas; replica++) {
    const clock = step.clocks.find((c) => c.replica === replica);
    rows.push(el("tr", {},
      el("th", { scope: "row" }, `node ${replica}`, el("br"), el("small", {}, `clock ${(trace.start_second + clock.physical_ms / 1000).toFixed(3)}`)),
      trace.buckets.map((bucket) => {
        const siblings = step.state[bucket][replica] || [];
        const shown = siblings.length > SIBLINGS_SHOWN ? siblings.slice(-SIBLINGS_SHOWN) : siblings;
        return el("td", { class: `cell-${bucket}` }, siblings.length === 0 ? "–" : [
          siblings.length > 1 ? el("div", { class: "siblings" }, `${siblings.length} siblings`) : null,
          siblings.length > shown.length ? el("div", { class: "more" }, `… ${siblings.length - shown.length} more, then:`) : null,
          shown.map((sibling) => el("div", { class: "held" },
            el("strong", {}, `${step.key ?? "x"} = ${JSON.stringify(sibling.value)}`), " ",
            el("small", { title: `write ${sibling.write_id}` }, `stamp ${storyStamp(sibling.stamp)}`))),
        ]);
      })));
  }
  return el("table", { class: "state fit", id: "state-table" },
    el("thead", {}, el("tr", {}, el("th", {}, ""), trace.buckets.map((bucket) => el("th", { scope: "col" }, chip(bucket, trace.colours))))),
    el("tbody", {}, rows));
}
