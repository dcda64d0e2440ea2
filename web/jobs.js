// Run an experiment from the page: the same run `clocklab experiment` makes,
// with its progress streamed as server-sent events and a way to cancel it.
import { api, el, announce, onLeave } from "./page.js";

let source = null; // the EventSource of the job being watched

const ENGINES = { sim: "simulator", processes: "real processes" };

/**
 * The form that starts a run, and the progress of the job it started (or of
 * one already running when the page opened). `experiments` is the overview's
 * list: names and each spec's engine.
 */
export async function runPanel(experiments) {
  const status = el("div", { id: "job", "aria-live": "polite" });
  const name = el("select", { id: "job-experiment", "aria-label": "Experiment" },
    experiments.map((experiment) => el("option", { value: experiment.name }, experiment.name)));
  const size = el("select", { id: "job-size", "aria-label": "Size" },
    el("option", { value: "quick" }, "quick"), el("option", { value: "full" }, "full sweep"));
  const seed = el("input", { id: "job-seed", type: "number", min: 0, step: 1, value: 1, "aria-label": "Seed" });
  const engine = el("select", { id: "job-engine", "aria-label": "Engine" },
    el("option", { value: "" }, "the spec's engine"),
    el("option", { value: "processes" }, ENGINES.processes),
    el("option", { value: "sim" }, ENGINES.sim));
  const start = el("button", { id: "job-start", class: "primary" }, "Start");
  start.addEventListener("click", async () => {
    const request = { experiment: name.value, size: size.value, seed: Number(seed.value) };
    if (engine.value) request.engine = engine.value;
    try {
      watch(await api("/api/jobs", "POST", request), status);
    } catch (error) {
      status.replaceChildren(el("p", { id: "job-error", class: "error", role: "alert" }, "✗ ", error.message));
    }
  });
  const panel = el("section", { class: "run-panel", "aria-label": "Run an experiment" },
    el("h2", {}, "Run an experiment"),
    el("p", { class: "controls" },
      el("label", {}, "Experiment ", name), el("label", {}, "Size ", size),
      el("label", {}, "Seed ", seed), el("label", {}, "Engine ", engine), start),
    status);
  const { jobs } = await api("/api/jobs");
  const running = jobs.find((job) => job.state === "running");
  if (running) watch(running, status);
  onLeave(() => source?.close());
  return panel;
}

/** Shows a job's progress as it streams in; opens its run page when it finishes. */
function watch(job, status) {
  source?.close();
  const bar = el("progress", { id: "job-progress", max: 1, value: 0 });
  const facts = el("span", { id: "job-facts" });
  const cancel = el("button", { id: "job-cancel" }, "Cancel");
  const title = `Job ${job.id}: ${job.experiment} (${job.size}, seed ${job.seed}, ${ENGINES[job.engine] ?? job.engine})`;
  status.replaceChildren(el("p", {}, el("strong", {}, title)), el("p", { class: "controls" }, bar, facts, cancel));
  const show = (job) => {
    bar.max = Math.max(job.trials, 1);
    bar.value = job.trials_done;
    facts.textContent = `points ${job.points_done}/${job.points}, trials ${job.trials_done}/${job.trials}, `
      + `${job.acked.toLocaleString("en")} writes acknowledged, ${job.seconds.toFixed(0)} s`;
  };
  show(job);
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    facts.textContent = "Cancelling: stopping its replicas…";
    try {
      await api(`/api/jobs/${job.id}/cancel`, "POST");
    } catch (error) {
      status.append(el("p", { class: "error", role: "alert" }, "✗ ", error.message));
    }
  });
  source = new EventSource(`/api/jobs/${job.id}/events`);
  source.addEventListener("progress", (event) => show(JSON.parse(event.data)));
  source.addEventListener("ended", (event) => {
    source.close();
    const ended = JSON.parse(event.data);
    show(ended);
    cancel.disabled = true;
    if (ended.state === "finished") {
      announce(`${ended.experiment} finished`);
      location.hash = `#/run/${encodeURIComponent(ended.experiment)}/${encodeURIComponent(ended.run)}`;
    } else if (ended.state === "cancelled") {
      status.append(el("p", { id: "job-cancelled" }, "Cancelled: its replicas were stopped and its unfinished run removed."));
    } else {
      status.append(el("p", { id: "job-error", class: "error", role: "alert" }, "✗ ", ended.error));
    }
  });
}
