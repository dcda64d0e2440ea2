// Step through a scripted scenario (DDIA Figure 8-3 first): a space-time
// diagram, one lane per replica, drawn step by step, and every strategy's
// state after each step.
import { api, el, page, announce, droppedMark, stamp, onLeave } from "./page.js";

export async function showScenarios() {
  const main = page("Step through a scenario");
  const { scenarios } = await api("/api/scenarios");
  main.append(el("ul", {}, scenarios.map((scenario) =>
    el("li", {}, el("a", { href: `#/scenario/${encodeURIComponent(scenario.name)}` }, scenario.title)))));
}

export async function showScenario(name) {
  const trace = await api(`/api/scenarios/${encodeURIComponent(name)}`);
  const main = page(trace.title);
  let current = 0;
  const counter = el("span", { id: "step-counter", "aria-live": "polite" });
  const say = el("p", { class: "say", id: "say" });
  const diagram = el("div", { id: "diagram" });
  const state = el("div", { id: "state" });
  const back = el("button", { id: "back", onclick: () => go(current - 1) }, "◀ Back");
  const next = el("button", { id: "next", class: "primary", onclick: () => go(current + 1) }, "Next ▶");
  main.append(
    el("p", {}, trace.summary),
    el("p", { class: "controls" }, back, next, el("button", { onclick: () => go(0) }, "Restart"), counter,
      el("span", {}, "(keys: ← and →)")),
    say, diagram, el("h2", {}, "State after this step"), state);

  function go(step) {
    current = Math.max(0, Math.min(trace.steps.length - 1, step));
    const shown = trace.steps[current];
    counter.textContent = `Step ${current + 1} of ${trace.steps.length}`;
    say.textContent = shown.say;
    back.disabled = current === 0;
    next.disabled = current === trace.steps.length - 1;
    diagram.replaceChildren(drawDiagram(trace, current));
    state.replaceChildren(stateTable(trace, shown));
    announce(shown.say);
  }
  const keys = (event) => {
    if (event.target.matches("input, select, textarea")) return;
    if (event.key === "ArrowRight") go(current + 1);
    if (event.key === "ArrowLeft") go(current - 1);
  };
  document.addEventListener("keydown", keys);
  onLeave(() => document.removeEventListener("keydown", keys));
  go(0);
}

const LANE_GAP = 90;
const LEFT = 110;
const WIDTH = 1000;

function label(step) {
  if (step.action === "write") return `${step.key} := ${JSON.stringify(step.value)}`;
  if (step.action === "increment") return `${step.key} := ${step.key} + 1`;
  if (step.action === "clock") return `clock ${step.offset_ms >= 0 ? "+" : ""}${step.offset_ms} ms`;
  return "";
}

/** The space-time diagram up to step `upTo`: lanes are replicas, x is true time. */
function drawDiagram(trace, upTo) {
  const ns = "http://www.w3.org/2000/svg";
  const last = Math.max(...trace.steps.map((step) => step.at_ms), 1);
  const x = (ms) => LEFT + (ms / last) * (WIDTH - LEFT - 80);
  const y = (replica) => 50 + (replica - 1) * LANE_GAP;
  const height = 50 + trace.replicas * LANE_GAP;
  const parts = [`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#111"/></marker></defs>`];
  for (let replica = 1; replica <= trace.replicas; replica++) {
    parts.push(`<line x1="${LEFT - 10}" y1="${y(replica)}" x2="${WIDTH - 20}" y2="${y(replica)}" stroke="#888" stroke-width="2"/>`,
      `<text x="10" y="${y(replica) + 6}" font-size="18" font-weight="bold">node ${replica}</text>`);
  }
  parts.push(`<text x="${WIDTH - 20}" y="${height - 8}" font-size="13" text-anchor="end">true time →</text>`);
  trace.steps.slice(0, upTo + 1).forEach((step, index) => {
    const now = index === upTo;
    const colour = now ? "#0b4f9c" : "#111";
    const width = now ? 4 : 2;
    if (step.action === "replicate") {
      for (const from of step.delivered_steps) {
        const origin = trace.steps[from];
        parts.push(`<line x1="${x(origin.at_ms)}" y1="${y(origin.replica)}" x2="${x(step.at_ms)}" y2="${y(step.to)}" stroke="${colour}" stroke-width="${width}" marker-end="url(#arrow)"/>`);
      }
      if (step.delivered_steps.length === 0) {
        parts.push(`<text x="${x(step.at_ms)}" y="${y(step.to) - 10}" font-size="12">nothing new from node ${step.from}</text>`);
      }
    } else {
      const clock = step.clocks.find((c) => c.replica === step.replica);
      const reading = clock ? `clock ${(trace.start_second + clock.physical_ms / 1000).toFixed(3)}` : "";
      parts.push(`<circle cx="${x(step.at_ms)}" cy="${y(step.replica)}" r="${now ? 9 : 7}" fill="${colour}"/>`,
        `<text x="${x(step.at_ms)}" y="${y(step.replica) - 14}" font-size="15" text-anchor="middle" fill="${colour}">${escape(label(step))}</text>`,
        `<text x="${x(step.at_ms)}" y="${y(step.replica) + 26}" font-size="12" text-anchor="middle">${escape(reading)}</text>`);
    }
  });
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${height}`);
  svg.setAttribute("class", "diagram");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `Space-time diagram, steps 1 to ${upTo + 1}`);
  svg.innerHTML = parts.join("");
  return svg;
}

/** A stamp for the story: times as seconds past the minute (42.004 s), as in the figure. */
function storyStamp(value) {
  const part = (item) => typeof item === "bigint" || (typeof item === "number" && item > 1e15)
    ? `${(Number(BigInt(item) % 60000000000n) / 1e9).toFixed(3)} s`
    : String(item);
  return Array.isArray(value) ? `(${value.map(part).join(", ")})` : stamp(value);
}

function escape(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

/** Rows: replicas; columns: strategies; cells: what each holds, with stamps. */
function stateTable(trace, step) {
  const writeValue = new Map();
  for (const earlier of trace.steps.slice(0, step.index + 1)) {
    for (const write of earlier.writes) writeValue.set(`${write.bucket} ${write.write_id}`, write.value);
  }
  const rows = [];
  for (let replica = 1; replica <= trace.replicas; replica++) {
    const clock = step.clocks.find((c) => c.replica === replica);
    rows.push(el("tr", {},
      el("th", { scope: "row" }, `node ${replica}`, el("br"), el("small", {}, `clock ${(trace.start_second + clock.physical_ms / 1000).toFixed(3)}`)),
      trace.buckets.map((bucket) => {
        const siblings = step.state[bucket][replica] || [];
        return el("td", { class: `cell-${bucket}` }, siblings.length === 0 ? "–" : siblings.map((sibling) =>
          el("div", {}, el("strong", {}, `${step.key ?? "x"} = ${JSON.stringify(sibling.value)}`), " ", el("small", {}, `stamp ${storyStamp(sibling.stamp)}`))),
          siblings.length > 1 ? el("div", {}, `${siblings.length} siblings`) : null);
      })));
  }
  const lostRow = el("tr", {}, el("th", { scope: "row" }, "lost so far"), trace.buckets.map((bucket) => {
    const lost = step.lost[bucket] || [];
    return el("td", { class: `lost-${bucket}` }, lost.length === 0 ? el("span", { class: "kept" }, "✓ nothing")
      : lost.map((id) => el("div", {}, droppedMark(`write ${id} (${JSON.stringify(writeValue.get(`${bucket} ${id}`))}) acknowledged, held by no replica`))));
  }));
  return el("table", { class: "state", id: "state-table" },
    el("thead", {}, el("tr", {}, el("th", {}, ""), trace.buckets.map((bucket) => el("th", { scope: "col" }, bucket)))),
    el("tbody", {}, rows, lostRow));
}
