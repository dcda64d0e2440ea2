// Results: every experiment, the quiz that asks before it shows, a run's
// plots, tables and report, and why each dropped write was dropped.
import { api, el, page, clockTime, droppedMark, stamp, chip, plotImage, sizePlots, strategyKey } from "./page.js";
import { runPanel } from "./jobs.js";

const link = (href, text, attributes = {}) => el("a", { href, ...attributes }, text);
const runHref = (experiment, run) => `#/run/${encodeURIComponent(experiment)}/${encodeURIComponent(run)}`;
const number = (value) => Number(value).toLocaleString("en");

// Lesson mode keeps the answers off the overview until the class has
// answered: the teacher turns it on (it stays on in this browser), and
// each experiment's plot and findings come back once its quiz is answered.
const LESSON = "clocklab.lesson";
const lessonMode = () => localStorage.getItem(LESSON) === "on";
const answeredKey = (name) => `clocklab.answered.${name}`;
const answered = (name) => sessionStorage.getItem(answeredKey(name)) === "yes";

/** The overview: every experiment as a card that teaches at a glance. */
export async function showResults({ lesson = false } = {}) {
  if (lesson) localStorage.setItem(LESSON, "on");
  const main = page("Experiments");
  const { experiments } = await api("/api/experiments");
  const on = lessonMode();
  const toggle = el("button", { id: "lesson-mode", "aria-pressed": on ? "true" : "false",
    onclick: () => { localStorage.setItem(LESSON, on ? "off" : "on"); showResults(); } },
    on ? "Lesson mode is on: show every answer" : "Lesson mode: hide the answers until the class has answered");
  main.append(
    el("p", { class: "controls" }, toggle),
    on
      ? el("p", { id: "lesson-note" }, "Lesson mode: each card asks its question first. Its plot and findings appear once the class has answered it (Predict, then reveal).")
      : el("p", {}, "Each card is one experiment: the question it asks, its latest run's main plot, and what that run found. ",
        "Start a run below, or with ", el("code", {}, "just experiment NAME --quick"), " (add ", el("code", {}, "--sim"), " for the simulator); it appears here when it finishes."));
  if (!on) main.append(await runPanel(experiments));
  main.append(el("div", { class: "overview" }, experiments.map((experiment) => experimentCard(experiment, on))));
  sizePlots(main);
}

const SIZES = { quick: "quick", full: "full sweep", custom: "custom" };

function experimentCard(experiment, lesson) {
  const latest = experiment.latest;
  const hidden = lesson && !answered(experiment.name);
  const predict = experiment.quiz_question && latest
    ? el("p", {}, link(`#/predict/${encodeURIComponent(experiment.name)}`, "Predict, then reveal →", { class: hidden ? "button primary" : null }))
    : "";
  const card = el("section", { class: "experiment-card", id: `card-${experiment.name}`, "aria-label": `Experiment ${experiment.name}` },
    el("h2", {}, experiment.name),
    el("p", { class: "question" }, (hidden ? experiment.quiz_question : null) ?? experiment.question ?? ""));
  if (hidden) {
    card.append(predict);
    return card;
  }
  const runs = experiment.runs.map((run) => el("li", {},
    run.finished ? link(runHref(experiment.name, run.id), run.started ?? run.id) : `${run.started ?? run.id} (unfinished)`,
    el("span", { class: "run-facts" },
      ` seed ${run.seed ?? "?"}, ${SIZES[run.size] ?? run.size}, ${run.engine === "sim" ? "simulator" : "real processes"}${run.reference ? ", the reference run" : ""}`)));
  card.append(
    latest
      ? el("a", { href: runHref(experiment.name, latest.id), class: "latest" },
        latest.plot ? plotImage(latest.plot, `${experiment.name}: the latest run's main plot`) : "")
      : el("p", { class: "no-runs" }, "No run yet."),
    latest ? el("p", { class: "headline" }, latest.headline) : "",
    predict,
    runs.length ? el("details", {}, el("summary", {}, `${runs.length} run${runs.length === 1 ? "" : "s"}`), el("ul", { class: "runs" }, runs)) : "");
  return card;
}

/**
 * Predict, then reveal: the setup and the question, a choice for the
 * class, and only then the verdict, the plot and the explanation. The
 * server grades the choice (`POST /api/quiz/NAME/answer`); nothing of the
 * answer is on the page before it.
 */
export async function showPredict(name, run = null) {
  const main = page(`${name}: predict, then reveal`);
  const query = run ? `?run=${encodeURIComponent(run)}` : "";
  let quiz;
  try {
    quiz = await api(`/api/quiz/${encodeURIComponent(name)}${query}`);
  } catch (error) {
    main.append(el("p", {}, link("#/results", "← all experiments")),
      el("p", {}, `This experiment cannot be quizzed yet: ${error.message}. Make a run of it, then come back.`));
    return;
  }
  const reveal = el("section", { id: "reveal", "aria-live": "polite" });
  const choose = async (choice) => {
    for (const button of main.querySelectorAll(".choice")) button.disabled = true;
    let answer;
    try {
      answer = await api(`/api/quiz/${encodeURIComponent(name)}/answer`, "POST", { choice, run: quiz.run });
    } catch (error) {
      reveal.replaceChildren(el("p", { class: "error", role: "alert" }, "✗ ", error.message));
      return;
    }
    sessionStorage.setItem(answeredKey(name), "yes");
    for (const button of main.querySelectorAll(".choice")) {
      const right = answer.accepted.includes(button.dataset.strategy);
      button.classList.toggle("right", right);
      button.classList.toggle("chosen", button.dataset.strategy === choice);
      button.append(el("span", { class: "mark" }, right ? " ✓" : button.dataset.strategy === choice ? " ✗" : ""));
    }
    reveal.replaceChildren(
      el("p", { id: "verdict", class: `headline verdict ${answer.correct ? "correct" : "wrong"}` },
        answer.correct ? "✓ " : "✗ ", answer.sentence),
      el("p", { class: "graded" }, `Graded on ${answer.run_label}.`),
      el("figure", { class: "reveal-figure" }, plotImage(answer.plot, `${name}: the graded run's main plot`, { id: "reveal-plot" })),
      el("p", {}, answer.headline),
      answer.why ? el("h2", {}, "Why") : "",
      answer.why ? el("p", { id: "why" }, answer.why) : "",
      el("p", {}, link(runHref(name, answer.run), quiz.choosing === "guards"
        ? "The whole run: every plot and the numbers, per guard →"
        : "The whole run: every plot, the numbers, and why each write was dropped →")));
    sizePlots(reveal);
  };
  const runChoice = el("select", { id: "quiz-run", "aria-label": "Run to grade against",
    onchange: () => { location.hash = `#/predict/${encodeURIComponent(name)}/${encodeURIComponent(runChoice.value)}`; } },
    quiz.runs.map((option) => el("option", { value: option.id, selected: option.id === quiz.run }, option.label)));
  main.append(
    el("p", {}, link("#/results", "← all experiments")),
    quiz.setup ? el("p", { id: "setup", class: "setup" }, quiz.setup) : "",
    el("p", { id: "question", class: "say" }, quiz.question),
    el("p", { class: "controls", id: "choices" }, quiz.choices.map((strategy) =>
      el("button", { class: "choice", "data-strategy": strategy, style: `--colour: ${quiz.colours[strategy]}`,
        onclick: () => choose(strategy) }, strategy))),
    strategyKey(quiz.key, false, quiz.choosing),
    reveal,
    el("p", { class: "controls graded" }, el("label", { for: "quiz-run" }, "Graded on"), runChoice));
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
  const main = page(`${experiment}: two runs side by side`);
  const data = await api(`/api/compare/${[experiment, first, second].map(encodeURIComponent).join("/")}`);
  const rate = (side) => `${percent(side.rate)} ± ${(200 * side.standard_error).toFixed(1)} (${side.trials} trial${side.trials === 1 ? "" : "s"})`;
  main.append(
    el("p", {}, link(runHref(experiment, first), `← run ${first}`)),
    el("p", {}, `Solid lines: ${first}. Dashed: ${second}. Error bars and ± are two standard errors. Two rates agree when they differ by at most 2 percentage points or three standard errors of the difference.`),
    el("figure", { class: "wide-figure" }, plotImage(data.plot, `Drop rates of ${first} and ${second} in one plot`, { id: "compare-plot" })),
    el("table", { id: "compare-table" },
      el("caption", { class: "visually-hidden" }, "Drop rates of both runs per point and strategy"),
      el("thead", {}, el("tr", {}, [data.parameter_label ?? data.parameter, "strategy", first, second, "difference", "allowed", "agree"].map((name, index) =>
        el("th", { scope: "col", class: index > 1 ? "number" : null }, name)))),
      el("tbody", {}, data.rows.map((row) => el("tr", {},
        el("td", { class: "number" }, number(row.value)),
        el("th", { scope: "row" }, chip(row.strategy, data.colours)),
        el("td", { class: "number" }, rate(row.first)),
        el("td", { class: "number" }, rate(row.second)),
        el("td", { class: "number" }, `${row.difference >= 0 ? "+" : ""}${(100 * row.difference).toFixed(1)}`),
        el("td", { class: "number" }, (100 * row.allowed).toFixed(1)),
        el("td", {}, row.agrees ? "yes" : droppedMark("no")))))));
  sizePlots(main);
}

/** What each strategy lost, per sweep point. */
function lossTable(data) {
  const header = [data.parameter_label, "strategy", "acknowledged", "dropped", "causality violations",
    "real-time violations", "concurrent overwrites", "reads with siblings", "most siblings", "replicas agree"];
  return el("table", { id: "summary", class: "fit" },
    el("caption", {}, "What each strategy lost"),
    el("thead", {}, el("tr", {}, header.map((name, index) => el("th", { scope: "col", class: index > 1 ? "number" : null }, name)))),
    el("tbody", {}, data.summaries.map((row) => el("tr", {},
      el("td", { class: "number", title: data.point_words[row.point] }, data.point_labels[row.point] ?? row.value),
      el("th", { scope: "row" }, chip(row.strategy, data.colours)),
      el("td", { class: "number" }, number(row.acked)),
      el("td", { class: "number" }, row.dropped ? droppedMark(`${row.dropped_percent_mean.toFixed(1)}%`) : "0.0%"),
      el("td", { class: "number" }, number(row.dropped_causality)),
      el("td", { class: "number" }, number(row.dropped_realtime)),
      el("td", { class: "number" }, number(row.dropped_concurrent)),
      el("td", { class: "number" }, number(row.siblings)),
      el("td", { class: "number" }, row.max_siblings),
      el("td", { class: "number" }, row.diverged_keys === 0 ? "yes" : droppedMark(`${row.diverged_keys} keys differ`)),
    ))));
}

/** What each strategy's guarantee cost, per sweep point. */
function costTable(data) {
  const header = [data.parameter_label, "strategy", "median write (ms)", "99th percentile (ms)", "not acknowledged", "bytes kept per write"];
  return el("table", { id: "costs", class: "fit" },
    el("caption", {}, "What it cost"),
    el("thead", {}, el("tr", {}, header.map((name, index) => el("th", { scope: "col", class: index > 1 ? "number" : null }, name)))),
    el("tbody", {}, data.summaries.map((row) => el("tr", {},
      el("td", { class: "number", title: data.point_words[row.point] }, data.point_labels[row.point] ?? row.value),
      el("th", { scope: "row" }, chip(row.strategy, data.colours)),
      el("td", { class: "number" }, (row.latency_p50_ms ?? 0).toFixed(1)),
      el("td", { class: "number" }, (row.latency_p99_ms ?? 0).toFixed(1)),
      el("td", { class: "number" }, number(row.failed ?? 0)),
      el("td", { class: "number" }, Math.round(row.metadata_bytes ?? 0))))));
}

/** What each way of checking a lease let through, per sweep point (a lease run). */
function leaseTable(data) {
  const header = [data.parameter_label, "guard", "unsafe trials", "overlaps", "both believed (ms)",
    "stale writes accepted", "refused by fencing", "acknowledged", "lost updates"];
  return el("table", { id: "lease-verdicts", class: "fit" },
    el("caption", {}, "What each guard let through: two holders at once, writes from an expired lease, increments lost"),
    el("thead", {}, el("tr", {}, header.map((name, index) => el("th", { scope: "col", class: index > 1 ? "number" : null }, name)))),
    el("tbody", {}, data.lease.map((row) => el("tr", {},
      el("td", { class: "number", title: data.point_words[row.point] }, data.point_labels[row.point] ?? row.point),
      el("th", { scope: "row" }, chip(row.guard, data.guard_colours)),
      el("td", { class: "number" }, row.unsafe_trials ? droppedMark(`${row.unsafe_trials} of ${row.trials}`) : `0 of ${row.trials}`),
      el("td", { class: "number" }, number(row.overlaps)),
      el("td", { class: "number" }, Math.round(row.overlap_ms)),
      el("td", { class: "number" }, row.stale_acked ? droppedMark(number(row.stale_acked)) : "0"),
      el("td", { class: "number" }, number(row.fenced)),
      el("td", { class: "number" }, number(row.acked)),
      el("td", { class: "number" }, row.lost_updates ? droppedMark(number(row.lost_updates)) : "0")))));
}

export async function showRun(experiment, run) {
  const main = page(`${experiment}: run ${run}`);
  const data = await api(`/api/runs/${encodeURIComponent(experiment)}/${encodeURIComponent(run)}`);
  main.append(
    el("p", {}, link("#/results", "← all runs")),
    el("p", { id: "engine" }, data.engine === "sim"
      ? "Run in the simulator: the replicas' own logic under simulated time, network and disks (same seed, same history)."
      : data.engine === "pglogical"
        ? "Run on real PostgreSQL servers replicating with pglogical, each under its own libfaketime clock, one database per conflict resolution mode (the pg- buckets), beside real replica processes for the lab's own strategies."
      : data.lease
        ? "Run on real processes: lease workers that a real SIGSTOP pauses, a lock service over HTTP, replica processes with SQLite files."
        : "Run on real replica processes, sockets and SQLite files."),
    el("div", { class: "plots" }, data.plots.map((plot) => el("figure", {},
      plotImage(`${data.plots_url}${plot}.svg`, `Plot: ${plot}`),
      el("figcaption", {}, link(`${data.files}${plot}.png`, "as a picture (PNG)"))))),
  );
  if (data.lease) {
    main.append(el("h2", {}, "Per guard"), leaseTable(data));
  } else {
    await showStrategies(main, data, experiment, run);
  }
  main.append(
    el("details", {}, el("summary", {}, "The spec this run used"), el("pre", { id: "spec" }, data.spec)),
    el("h2", {}, "Report"),
  );
  const report = el("div", { class: "report", id: "report" });
  report.innerHTML = data.report_html; // rendered by the server, raw HTML escaped
  // The report's plots are drawn at the width they are shown at, too.
  for (const image of report.querySelectorAll("img")) {
    if (image.getAttribute("src")?.startsWith(data.plots_url)) {
      image.dataset.src = image.getAttribute("src");
      image.removeAttribute("src");
      image.classList.add("plot");
    }
  }
  main.append(report);
  sizePlots(main);
}

/** A key-value run's tables per strategy, its comparison and its drops. */
async function showStrategies(main, data, experiment, run) {
  main.append(
    el("h2", {}, "Per strategy"),
    lossTable(data),
    costTable(data),
    await compareChooser(experiment, run),
    el("h2", { id: "drops-heading" }, `Dropped writes (${number(data.drops)})`),
  );
  const drops = el("div", { id: "drops" });
  main.append(drops);
  const strategies = [...new Set(data.summaries.map((row) => row.strategy))];
  const choose = el("select", { id: "strategy", "aria-label": "Strategy" },
    el("option", { value: "" }, "every strategy"), strategies.map((name) => el("option", { value: name }, name)));
  choose.addEventListener("change", () => listDrops(drops, experiment, run, choose.value, 0, data.colours));
  drops.before(el("p", {}, el("label", { for: "strategy" }, "Show drops of "), choose));
  await listDrops(drops, experiment, run, "", 0, data.colours);
}

const PAGE = 100;

async function listDrops(container, experiment, run, strategy, offset, colours) {
  const query = new URLSearchParams({ offset, limit: PAGE });
  if (strategy) query.set("strategy", strategy);
  const base = `/api/runs/${encodeURIComponent(experiment)}/${encodeURIComponent(run)}`;
  const data = await api(`${base}/drops?${query}`);
  const open = (index) => { location.hash = `${runHref(experiment, run)}/drop/${index}`; };
  const rows = data.drops.map((drop) => el("tr", {
      class: "clickable drop-row", tabindex: 0, role: "link",
      "aria-label": `Why ${drop.bucket} dropped operation ${drop.operation}`,
      onclick: () => open(drop.index),
      onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); open(drop.index); } },
    },
    el("td", {}, droppedMark(`operation ${drop.operation ?? "?"}`)),
    el("td", {}, chip(drop.bucket, colours)), el("td", {}, drop.key), el("td", {}, drop.point_words),
    el("td", { class: "number" }, drop.trial + 1), el("td", { class: "number" }, drop.replica), el("td", {}, drop.cause_label)));
  const table = el("table", { id: "drops-table", class: "fit" },
    el("thead", {}, el("tr", {}, ["write", "strategy", "key", "when", "trial", "replica", "cause"].map((name) => el("th", { scope: "col" }, name)))),
    el("tbody", {}, rows));
  const pager = el("p", {}, `Drops ${data.total ? offset + 1 : 0}–${offset + data.drops.length} of ${number(data.total)}. `,
    offset > 0 && el("button", { onclick: () => listDrops(container, experiment, run, strategy, Math.max(0, offset - PAGE), colours) }, "◀ Earlier"),
    " ",
    offset + data.drops.length < data.total && el("button", { onclick: () => listDrops(container, experiment, run, strategy, offset + PAGE, colours) }, "Later ▶"));
  container.replaceChildren(data.total ? table : el("p", {}, "No dropped writes."), pager);
}

function writeRow(write, role, stampWords) {
  return el("tr", {},
    el("th", { scope: "row" }, role),
    el("td", {}, `operation ${write.item ?? "–"}`, el("br"), el("small", {}, `write ${write.write_id ?? "–"}`)),
    el("td", { class: "number" }, write.replica ?? "–"),
    el("td", {}, el("span", { class: "stamp", title: `exact stamp: ${stamp(write.stamp)}` }, stampWords)),
    el("td", { class: "time" }, clockTime(write.invoke_ns)), el("td", { class: "time" }, clockTime(write.complete_ns)));
}

export async function showDrop(experiment, run, index) {
  const main = page("Why was it dropped?");
  const base = `/api/runs/${encodeURIComponent(experiment)}/${encodeURIComponent(run)}`;
  const detail = await api(`${base}/drops/${index}`);
  const drop = detail.drop;
  const relation = (killer) => killer.read_by_victim ? "it had read this one"
    : killer.finished_before_victim ? "this one finished before it began"
      : killer.invoke_ns > drop.victim.complete_ns ? "it began after this one finished, without having seen it"
        : "the two overlapped in time";
  const others = drop.killer_count - drop.root_killer_count;
  main.append(
    el("p", {}, link(runHref(experiment, run), `← run ${run}`)),
    el("p", { class: "rule", id: "rule" }, droppedMark(""), drop.rule),
    el("p", {}, `Strategy ${drop.bucket}, key ${drop.key}, ${detail.point_words}, trial ${drop.trial + 1}. Cause: `,
      el("strong", {}, detail.cause_label), "."),
    el("h2", {}, "The dropped write and what beat it"),
    el("table", { id: "drop-writes", class: "fit" },
      el("thead", {}, el("tr", {}, ["", "which", "replica", "stamp (exact on hover)", "began (true time, UTC)", "finished"].map((name) => el("th", { scope: "col" }, name)))),
      el("tbody", {}, writeRow(drop.victim, "✗ dropped", detail.victim_stamp),
        drop.killers.map((killer, number) => writeRow(killer, `beat it (${relation(killer)})`, detail.killer_stamps[number] ?? "")))),
    el("p", {}, drop.killer_count === 1
      ? "One write with a higher stamp lacks its item: that write beat it."
      : `${drop.killer_count} writes with a higher stamp lack its item. ${drop.root_killer_count === 1 ? "One of them beat it on its own" : `${drop.root_killer_count} of them beat it on their own`}${others > 0 ? `; the other ${others} had read ${drop.root_killer_count === 1 ? "that one" : "one of those"} and carried its win forward` : ""}.`),
    el("h2", {}, "Clocks when the dropped write began"),
    el("table", { id: "clocks", class: "fit" },
      el("thead", {}, el("tr", {}, ["replica", "ahead of true time", "as last set"].map((name) => el("th", { scope: "col" }, name)))),
      el("tbody", {}, detail.clocks.map((clock) => el("tr", {},
        el("th", { scope: "row" }, clock.replica),
        el("td", { class: "number" }, `${clock.offset_ms >= 0 ? "+" : ""}${clock.offset_ms.toFixed(3)} ms`),
        el("td", { title: `as sent: ${stamp(clock.settings)}` }, clock.described))))),
  );
}

