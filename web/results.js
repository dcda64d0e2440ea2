// Results: every run, a run's plots, table, spec and report, and why each
// dropped write was dropped.
import { api, el, page, clockTime, droppedMark, stamp } from "./page.js";
import { runPanel } from "./jobs.js";

const link = (href, text) => el("a", { href }, text);
const runHref = (experiment, run) => `#/run/${encodeURIComponent(experiment)}/${encodeURIComponent(run)}`;

/** The overview: every experiment as a card that teaches at a glance. */
export async function showResults() {
  const main = page("Experiments");
  const { experiments } = await api("/api/experiments");
  main.append(el("p", {}, "Each card is one experiment: the question it asks, its latest run's main plot, and what that run found. ",
    "Start a run below, or with ", el("code", {}, "just experiment NAME --quick"), " (add ", el("code", {}, "--sim"), " for the simulator); it appears here when it finishes."));
  main.append(await runPanel(experiments));
  main.append(el("div", { class: "overview" }, experiments.map(experimentCard)));
}

const SIZES = { quick: "quick", full: "full sweep", custom: "custom" };

function experimentCard(experiment) {
  const latest = experiment.latest;
  const runs = experiment.runs.map((run) => el("li", {},
    run.finished ? link(runHref(experiment.name, run.id), run.started ?? run.id) : `${run.started ?? run.id} (unfinished)`,
    el("span", { class: "run-facts" },
      ` seed ${run.seed ?? "?"}, ${SIZES[run.size] ?? run.size}, ${run.engine === "sim" ? "simulator" : "real processes"}`)));
  return el("section", { class: "experiment-card", id: `card-${experiment.name}`, "aria-label": `Experiment ${experiment.name}` },
    el("h2", {}, experiment.name),
    experiment.question ? el("p", { class: "question" }, experiment.question) : "",
    latest
      ? el("a", { href: runHref(experiment.name, latest.id), class: "latest" },
        latest.plot ? el("img", { class: "plot", src: latest.plot, alt: `${experiment.name}: the latest run's main plot` }) : "")
      : el("p", { class: "no-runs" }, "No run yet."),
    latest ? el("p", { class: "headline" }, latest.headline) : "",
    latest ? el("p", {}, link(`#/predict/${encodeURIComponent(experiment.name)}`, "Predict, then reveal →")) : "",
    runs.length ? el("details", {}, el("summary", {}, `${runs.length} run${runs.length === 1 ? "" : "s"}`), el("ul", { class: "runs" }, runs)) : "");
}

/**
 * Predict, then reveal: the setup and a question, a choice for the class,
 * and only then the plot and what the run found. Nothing of the answer is
 * on the page before the choice.
 */
export async function showPredict(name) {
  const main = page(`${name}: predict, then reveal`);
  const { experiments } = await api("/api/experiments");
  const experiment = experiments.find((e) => e.name === name);
  if (!experiment?.latest) {
    main.append(el("p", {}, "This experiment has no finished run yet: make one, then come back."));
    return;
  }
  const run = await api(`/api/runs/${encodeURIComponent(name)}/${encodeURIComponent(experiment.latest.id)}`);
  // The strategy that dropped the largest share at any point of the sweep.
  const most = new Map();
  for (const row of run.summaries) most.set(row.strategy, Math.max(most.get(row.strategy) ?? 0, row.dropped_percent_mean));
  const strategies = [...most.keys()];
  const loser = strategies.reduce((a, b) => (most.get(b) > most.get(a) ? b : a));
  const reveal = el("section", { id: "reveal", "aria-live": "polite" });
  const choose = (choice) => {
    for (const button of main.querySelectorAll(".choice")) button.disabled = true;
    const right = most.get(choice) === most.get(loser);
    reveal.replaceChildren(
      el("p", { id: "verdict", class: "headline" }, right
        ? `Yes: ${choice} dropped the most, ${most.get(choice).toFixed(1)}% of acknowledged writes at worst.`
        : `Not ${choice} (${most.get(choice).toFixed(1)}% at worst): ${loser} dropped the most, ${most.get(loser).toFixed(1)}%.`),
      el("img", { class: "plot", id: "reveal-plot", src: experiment.latest.plot, alt: `${name}: the run's main plot` }),
      el("p", {}, experiment.latest.headline),
      experiment.why ? el("h2", {}, "Why") : "",
      experiment.why ? el("p", { id: "why" }, experiment.why) : "",
      el("p", {}, link(runHref(name, experiment.latest.id), "The whole run: every plot, the table, and why each write was dropped →")));
  };
  main.append(
    el("p", {}, link("#/results", "← all experiments")),
    el("h2", {}, "Predict"),
    // The README's question: the setup, and what to predict; never the answer.
    el("p", { id: "setup" }, experiment.predict ?? experiment.question ?? ""),
    el("p", { id: "question" }, "Which strategy will silently drop the largest share of its acknowledged writes? Choose, then see."),
    el("p", { class: "controls", id: "choices" }, strategies.map((strategy) =>
      el("button", { class: "choice", onclick: () => choose(strategy) }, strategy))),
    reveal);
}

/** A choice of another finished run of the same experiment to compare with. */
async function compareChooser(experiment, run) {
  const { experiments } = await api("/api/experiments");
  const others = (experiments.find((e) => e.name === experiment)?.runs ?? []).filter((r) => r.finished && r.id !== run);
  if (others.length === 0) return "";
  const choose = el("select", { id: "compare-with", "aria-label": "Run to compare with" },
    others.map((other) => el("option", { value: other.id }, `${other.id} (${other.size}, ${other.engine === "sim" ? "simulator" : "real processes"})`)));
  return el("p", { class: "controls" }, el("label", { for: "compare-with" }, "Compare with"), choose,
    el("button", { id: "compare", onclick: () => { location.hash = compareHref(experiment, run, choose.value); } }, "Compare"));
}

const compareHref = (experiment, first, second) =>
  `#/compare/${[experiment, first, second].map(encodeURIComponent).join("/")}`;

const percent = (fraction) => `${(100 * fraction).toFixed(1)}%`;

/** Two runs of one experiment: both drop curves in one plot, and their differences. */
export async function showCompare(experiment, first, second) {
  const main = page(`${experiment}: ${first} against ${second}`);
  const data = await api(`/api/compare/${[experiment, first, second].map(encodeURIComponent).join("/")}`);
  const rate = (side) => `${percent(side.rate)} ± ${(200 * side.standard_error).toFixed(1)} (${side.trials} trial${side.trials === 1 ? "" : "s"})`;
  main.append(
    el("p", {}, link(runHref(experiment, first), `← run ${first}`)),
    el("p", {}, `Solid lines: ${first}. Dashed: ${second}. Error bars and ± are two standard errors. Two rates agree when they differ by at most 2 percentage points or three standard errors of the difference.`),
    el("img", { class: "plot", id: "compare-plot", src: data.plot, alt: `Drop rates of ${first} and ${second} in one plot` }),
    el("table", { id: "compare-table" },
      el("caption", { class: "visually-hidden" }, "Drop rates of both runs per point and strategy"),
      el("thead", {}, el("tr", {}, [data.parameter, "strategy", first, second, "difference", "allowed", "agree"].map((name, index) =>
        el("th", { scope: "col", class: index > 1 ? "number" : null }, name)))),
      el("tbody", {}, data.rows.map((row) => el("tr", {},
        el("td", { class: "number" }, row.value),
        el("th", { scope: "row" }, row.strategy),
        el("td", { class: "number" }, rate(row.first)),
        el("td", { class: "number" }, rate(row.second)),
        el("td", { class: "number" }, `${row.difference >= 0 ? "+" : ""}${(100 * row.difference).toFixed(1)}`),
        el("td", { class: "number" }, (100 * row.allowed).toFixed(1)),
        el("td", {}, row.agrees ? "yes" : droppedMark("no")))))));
}

function summaryTable(summaries) {
  const header = ["value", "strategy", "acked", "dropped %", "causality", "real-time", "concurrent", "siblings",
    "most siblings", "p50 ms", "p99 ms", "not acked", "metadata bytes", "diverged keys"];
  const parameter = summaries.length ? summaries[0].parameter : "value";
  header[0] = parameter;
  return el("table", { id: "summary" },
    el("caption", { class: "visually-hidden" }, "Acknowledged and dropped writes per strategy, and what each strategy cost"),
    el("thead", {}, el("tr", {}, header.map((name, index) => el("th", { scope: "col", class: index > 1 ? "number" : null }, name)))),
    el("tbody", {}, summaries.map((row) => el("tr", {},
      el("td", { class: "number" }, row.value),
      el("th", { scope: "row" }, row.strategy),
      el("td", { class: "number" }, row.acked),
      el("td", { class: "number" }, row.dropped ? droppedMark(`${row.dropped_percent_mean.toFixed(1)}%`) : "0.0%"),
      el("td", { class: "number" }, row.dropped_causality),
      el("td", { class: "number" }, row.dropped_realtime),
      el("td", { class: "number" }, row.dropped_concurrent),
      el("td", { class: "number" }, row.siblings),
      el("td", { class: "number" }, row.max_siblings),
      el("td", { class: "number" }, (row.latency_p50_ms ?? 0).toFixed(1)),
      el("td", { class: "number" }, (row.latency_p99_ms ?? 0).toFixed(1)),
      el("td", { class: "number" }, row.failed ?? 0),
      el("td", { class: "number" }, Math.round(row.metadata_bytes ?? 0)),
      el("td", { class: "number" }, row.diverged_keys === 0 ? "0 (converged)" : droppedMark(`${row.diverged_keys} diverged`)),
    ))));
}

export async function showRun(experiment, run) {
  const main = page(`${experiment}: run ${run}`);
  const data = await api(`/api/runs/${encodeURIComponent(experiment)}/${encodeURIComponent(run)}`);
  main.append(
    el("p", {}, link("#/results", "← all runs")),
    el("p", { id: "engine" }, data.engine === "sim"
      ? "Run in the simulator: the replicas' own logic under simulated time, network and disks (same seed, same history)."
      : "Run on real replica processes, sockets and SQLite files."),
    el("div", { class: "plots" }, data.plots.map((plot) => el("figure", {},
      el("img", { class: "plot", src: `${data.files}${plot}.svg`, alt: `Plot: ${plot} against the swept parameter` }),
      el("figcaption", {}, link(`${data.files}${plot}.png`, `${plot}.png`))))),
    el("h2", {}, "Per strategy"),
    summaryTable(data.summaries),
    await compareChooser(experiment, run),
    el("h2", { id: "drops-heading" }, `Dropped writes (${data.drops})`),
  );
  const drops = el("div", { id: "drops" });
  main.append(drops);
  const strategies = [...new Set(data.summaries.map((row) => row.strategy))];
  const choose = el("select", { id: "strategy", "aria-label": "Strategy" },
    el("option", { value: "" }, "every strategy"), strategies.map((name) => el("option", { value: name }, name)));
  choose.addEventListener("change", () => listDrops(drops, experiment, run, choose.value, 0));
  drops.before(el("p", {}, el("label", { for: "strategy" }, "Show drops of "), choose));
  await listDrops(drops, experiment, run, "", 0);
  main.append(
    el("details", {}, el("summary", {}, "The spec this run used"), el("pre", { id: "spec" }, data.spec)),
    el("h2", {}, "Report"),
  );
  const report = el("div", { class: "report", id: "report" });
  report.innerHTML = data.report_html; // rendered by the server, raw HTML escaped
  main.append(report);
}

const PAGE = 100;

async function listDrops(container, experiment, run, strategy, offset) {
  const query = new URLSearchParams({ offset, limit: PAGE });
  if (strategy) query.set("strategy", strategy);
  const base = `/api/runs/${encodeURIComponent(experiment)}/${encodeURIComponent(run)}`;
  const data = await api(`${base}/drops?${query}`);
  const open = (index) => { location.hash = `${runHref(experiment, run)}/drop/${index}`; };
  const rows = data.drops.map((drop) => el("tr", {
      class: "clickable drop-row", tabindex: 0, role: "link",
      "aria-label": `Why ${drop.bucket} dropped write ${drop.write_id}`,
      onclick: () => open(drop.index),
      onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); open(drop.index); } },
    },
    el("td", {}, droppedMark(drop.write_id ?? "?")),
    el("td", {}, drop.bucket), el("td", {}, drop.key), el("td", { class: "number" }, drop.point),
    el("td", { class: "number" }, drop.trial), el("td", { class: "number" }, drop.replica), el("td", {}, drop.cause)));
  const table = el("table", { id: "drops-table" },
    el("thead", {}, el("tr", {}, ["write", "strategy", "key", "point", "trial", "replica", "cause"].map((name) => el("th", { scope: "col" }, name)))),
    el("tbody", {}, rows));
  const pager = el("p", {}, `Drops ${data.total ? offset + 1 : 0}–${offset + data.drops.length} of ${data.total}. `,
    offset > 0 && el("button", { onclick: () => listDrops(container, experiment, run, strategy, Math.max(0, offset - PAGE)) }, "◀ Earlier"),
    " ",
    offset + data.drops.length < data.total && el("button", { onclick: () => listDrops(container, experiment, run, strategy, offset + PAGE) }, "Later ▶"));
  container.replaceChildren(data.total ? table : el("p", {}, "No dropped writes."), pager);
}

function writeRows(write, role) {
  return el("tr", {},
    el("th", { scope: "row" }, role),
    el("td", {}, write.write_id ?? "–"), el("td", { class: "number" }, write.replica ?? "–"),
    el("td", { class: "number" }, write.item ?? "–"), el("td", {}, el("code", {}, stamp(write.stamp))),
    el("td", {}, clockTime(write.invoke_ns)), el("td", {}, clockTime(write.complete_ns)));
}

export async function showDrop(experiment, run, index) {
  const main = page(`Why was it dropped?`);
  const base = `/api/runs/${encodeURIComponent(experiment)}/${encodeURIComponent(run)}`;
  const detail = await api(`${base}/drops/${index}`);
  const drop = detail.drop;
  main.append(
    el("p", {}, link(runHref(experiment, run), `← run ${run}`)),
    el("p", { class: "rule", id: "rule" }, droppedMark(""), drop.rule),
    el("p", {}, `Strategy ${drop.bucket}, key ${drop.key}, sweep point ${drop.point} `,
      el("code", {}, JSON.stringify(detail.params)), `, trial ${drop.trial}. Cause: `, el("strong", {}, drop.cause), "."),
    el("h2", {}, "The dropped write and what beat it"),
    el("table", { id: "drop-writes" },
      el("thead", {}, el("tr", {}, ["", "write", "replica", "item", "stamp", "invoked (true time, UTC)", "completed"].map((name) => el("th", { scope: "col" }, name)))),
      el("tbody", {}, writeRows(drop.victim, "✗ dropped"),
        drop.killers.map((killer, number) => writeRows(killer, `killer ${number + 1}${killer.read_by_victim ? " (read by the dropped write)" : killer.finished_before_victim ? " (finished before it began)" : " (overlapped it)"}`)))),
    el("p", {}, `${drop.killer_count} write(s) with a greater stamp lack its item; ${drop.root_killer_count} of them did so on their own (root killers), the others built on a root killer.`),
    el("h2", {}, "Clocks when the dropped write was invoked"),
    el("table", { id: "clocks" },
      el("thead", {}, el("tr", {}, ["replica", "offset from true time", "settings"].map((name) => el("th", { scope: "col" }, name)))),
      el("tbody", {}, detail.clocks.map((clock) => el("tr", {},
        el("th", { scope: "row" }, clock.replica),
        el("td", { class: "number" }, `${clock.offset_ms >= 0 ? "+" : ""}${clock.offset_ms.toFixed(3)} ms`),
        el("td", {}, el("code", {}, JSON.stringify(clock.settings))))))),
  );
}
