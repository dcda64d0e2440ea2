// clocklab's dashboard: the router. Plain ES modules, no build step,
// nothing loaded from outside this server.
import { leavePage, showError } from "./page.js";
import { showResults, showRun, showDrop, showCompare, showPredict } from "./results.js";
import { showLab } from "./lab.js";
import { showScenarios, showScenario, showSmallest } from "./scenario.js";

async function route() {
  leavePage();
  // Set again once the page is drawn: tests wait for it before they act.
  delete document.body.dataset.route;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    if (parts[0] === "run" && parts[3] === "drop") await showDrop(parts[1], parts[2], Number(parts[4]));
    else if (parts[0] === "run") await showRun(parts[1], parts[2]);
    else if (parts[0] === "compare") await showCompare(parts[1], parts[2], parts[3]);
    else if (parts[0] === "predict") await showPredict(parts[1], parts[2]);
    else if (parts[0] === "lesson") await showResults({ lesson: true });
    else if (parts[0] === "lab") await showLab();
    else if (parts[0] === "scenarios") await showScenarios();
    else if (parts[0] === "scenario") await showScenario(parts[1]);
    else if (parts[0] === "smallest") await showSmallest(parts[1], parts[2] || "any");
    else await showResults();
  } catch (error) {
    showError(error);
  }
  document.body.dataset.page = parts[0] || "results";
  document.body.dataset.route = location.hash;
}

window.addEventListener("hashchange", route);
route();
