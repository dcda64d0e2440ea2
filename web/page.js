// clocklab's dashboard: helpers every page uses. The pages import this
// module and app.js imports the pages, so nothing here imports a page.

/**
 * Fetches JSON from the dashboard's API; throws the API's error sentence.
 * A request that changes something always carries a JSON body (`{}` if
 * there is nothing to say): the server refuses any other kind, so that no
 * other web page can drive the lab with a plain form or text post.
 */
export async function api(path, method = "GET", body = undefined) {
  const options = { method, headers: {} };
  if (body === undefined && method !== "GET") body = {};
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const text = await response.text();
  let answer;
  try {
    answer = parseJson(text);
  } catch {
    answer = { error: response.statusText };
  }
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

/**
 * Parses JSON, keeping integers too big for a JavaScript number (timestamps
 * in nanoseconds) exact, as BigInt, where the browser gives the source text.
 */
export function parseJson(text) {
  return JSON.parse(text, (key, value, context) =>
    typeof value === "number" && !Number.isSafeInteger(value) && context && /^-?\d+$/.test(context.source)
      ? BigInt(context.source)
      : value);
}

/** Makes an element: el("td", {class: "number"}, "42", child, ...). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Says something to screen readers. */
export function announce(text) {
  document.getElementById("announce").textContent = text;
}

/** A true time in ns since the epoch as UTC hh:mm:ss.mmm. */
export function clockTime(ns) {
  if (ns === null || ns === undefined) return "–";
  const ms = typeof ns === "bigint" ? Number(ns / 1000000n) : Math.floor(Number(ns) / 1e6);
  return new Date(ms).toISOString().slice(11, 23);
}

/** A dropped write's mark: a symbol and a word, not colour alone. */
export function droppedMark(text = "dropped") {
  return el("span", { class: "dropped" }, "✗ ", text);
}

/** A stamp exactly as the replica gave it: `[1795555880490248472,3]`. */
export function stamp(value) {
  if (value === null || value === undefined) return "–";
  if (Array.isArray(value)) return `[${value.map(stamp).join(",")}]`;
  if (typeof value === "object") return `{${Object.entries(value).map(([k, v]) => `${k}:${stamp(v)}`).join(",")}}`;
  return String(value);
}

/** Whether a number in a stamp is a clock reading in ns (after 2001). */
const isClockReading = (item) => (typeof item === "bigint" || typeof item === "number") && Number(item) > 1e18;

/**
 * A stamp as a student reads it: clock readings as times of day
 * (`21:26:33.004`), the rest as numbers; the exact stamp on hover.
 */
export function readableStamp(value) {
  if (value === null || value === undefined) return el("span", { class: "stamp" }, "no stamp");
  let text;
  if (Array.isArray(value)) {
    text = value.map((item) => (isClockReading(item) ? clockTime(item) : stamp(item))).join(" · ");
  } else {
    text = stamp(value);
  }
  return el("span", { class: "stamp", title: `exact stamp: ${stamp(value)}` }, text);
}

/** A key of the strategies on a page: each name in its colour, and what it does. */
export function strategyKey(key, open = false, what = "strategies") {
  return el("details", { class: "strategy-key", open },
    el("summary", {}, `What the ${what} are`),
    el("dl", {}, Object.entries(key ?? {}).map(([name, { colour, about }]) =>
      [el("dt", {}, chip(name, { [name]: colour })), el("dd", {}, about)])));
}

/** A strategy's name with its colour, the one every plot gives it. */
export function chip(name, colours = {}) {
  return el("span", { class: "chip", style: `--colour: ${colours[name] ?? "#888"}` }, name);
}

/**
 * A plot, drawn by the server at exactly the width it is shown at, so its
 * text is the size it was drawn at (see sizePlots).
 */
export function plotImage(url, alt, attributes = {}) {
  return el("img", { class: "plot", "data-src": url, alt, ...attributes });
}

/** Plots are drawn in steps of this many pixels, so a resize redraws few. */
const PLOT_STEP = 20;

/**
 * Gives every plot on the page the width of its box, and asks the server
 * for it drawn at that width. Called after a page renders and on resize.
 */
export function sizePlots(root = document) {
  for (const image of root.querySelectorAll("img[data-src]")) {
    const box = image.parentElement;
    if (!box || box.clientWidth === 0) continue;
    const style = getComputedStyle(box);
    const room = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const width = Math.max(PLOT_STEP, Math.floor(room / PLOT_STEP) * PLOT_STEP);
    if (Number(image.getAttribute("width")) === width && image.getAttribute("src")) continue;
    image.setAttribute("width", width);
    const url = image.dataset.src;
    image.setAttribute("src", `${url}${url.includes("?") ? "&" : "?"}width=${width}`);
  }
}

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => sizePlots(), 150);
});

/** The page's content area, emptied, with a heading. */
export function page(title) {
  const main = document.getElementById("main");
  main.replaceChildren(el("h1", {}, title));
  document.title = `${title} – clocklab`;
  return main;
}

export function showError(error) {
  const main = document.getElementById("main");
  main.append(el("p", { class: "error", role: "alert" }, "✗ ", error.message || String(error)));
}

// Pages register a cleanup (e.g. the lab closes its event stream).
let leave = () => {};
export function onLeave(cleanup) {
  leave = cleanup;
}

/** Runs the current page's cleanup, before another page is shown. */
export function leavePage() {
  leave();
  leave = () => {};
}
