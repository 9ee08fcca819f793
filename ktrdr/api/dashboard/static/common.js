// Shared by every page. Every request to the backend goes through api(): the one place
// that sends JSON, the session cookie, and sends the browser to /login when asked who it is.

export const V1 = "/api/v1";
export const TERMINAL = new Set(["completed", "failed", "cancelled"]);
export const WAITING = new Set(["pending", "resuming"]);
// Claimed by the backend's own manager, which registers as a worker only while it holds
// research: an idle backend has no live worker of this type, and needs none.
const BACKEND_RUN = new Set(["agent_research"]);
const LIVE_WORKER = new Set(["available", "busy"]);

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

let leaving = false;

export async function api(path, { method = "GET", body, redirect = true } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (method !== "GET") {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body ?? {});
  }
  const response = await fetch(path, init);
  if (response.status === 401 && redirect && !leaving) {
    leaving = true; // several calls in flight all get 401: go to the login page once
    const next = encodeURIComponent(location.pathname + location.search);
    location.assign(`/login?next=${next}`);
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Builds DOM nodes; text is always set as text, never parsed as HTML.
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

export function statusBadge(status) {
  return h("span", { class: `status status-${status}`, "data-status": status, text: status });
}

export function operationLink(id, { short = true } = {}) {
  return h("a", { href: `/operations/${id}`, class: "op-id", title: id, text: short ? id.slice(0, 8) : id });
}

export function seconds(from, to = new Date()) {
  if (!from) return null;
  return Math.max(0, (new Date(to) - new Date(from)) / 1000);
}

export function span(secs) {
  if (secs === null || secs === undefined) return "–";
  if (secs < 60) return `${secs < 10 ? secs.toFixed(1) : Math.round(secs)}s`;
  const m = Math.floor(secs / 60);
  if (m < 60) return `${m}m ${Math.round(secs % 60)}s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours}h ${m % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

export function duration(op) {
  return op.started_at ? span(seconds(op.started_at, op.completed_at || new Date())) : "–";
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export function clock(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

// The operation types some live worker can claim now.
export function servedTypes(workers) {
  return new Set(workers.filter((w) => LIVE_WORKER.has(w.status)).map((w) => w.worker_type));
}

// Why a waiting operation cannot start, or null: no live worker of its type.
export function unserved(op, served) {
  if (!WAITING.has(op.status) || BACKEND_RUN.has(op.operation_type)) return null;
  return served.has(op.operation_type) ? null : `no live ${op.operation_type} worker`;
}

export function banner(message) {
  const node = document.getElementById("banner");
  node.textContent = message || "";
  node.hidden = !message;
}

// Calls refresh() now and again every `ms` after it settles; skips while the tab is hidden.
export function poll(refresh, ms) {
  const live = document.getElementById("live");
  let timer = null;
  async function tick() {
    clearTimeout(timer);
    if (!document.hidden) {
      try {
        await refresh();
        banner(null);
        if (live) live.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
      } catch (error) {
        banner(error instanceof ApiError ? `API error: ${error.message}` : `Backend unreachable: ${error.message}`);
      }
    }
    timer = setTimeout(tick, ms);
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
  tick();
  return tick;
}

export function wireLogout() {
  const link = document.getElementById("logout");
  if (!link) return;
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    await api("/logout", { method: "POST", redirect: false });
    location.assign("/login");
  });
}

export function progressCell(op) {
  const pct = Math.max(0, Math.min(100, Number(op.progress.percentage) || 0));
  const bar = h("div", { class: `bar bar-${op.status}` });
  bar.style.width = `${pct}%`;
  return h("td", { class: "progress-cell", title: op.progress.current_step || "" },
    h("div", { class: "progress small" }, bar),
    h("span", { class: "pct", text: `${pct.toFixed(0)}%` }),
    op.progress.current_step ? h("span", { class: "muted step", text: op.progress.current_step }) : null);
}

export function attemptText(op) {
  const max = op.retry_policy && op.retry_policy.max_attempts;
  return op.attempt ? (max && max > 1 ? `${op.attempt} of ${max}` : String(op.attempt)) : "–";
}
