import {
  V1, TERMINAL, api, h, statusBadge, operationLink, seconds, span, duration, bytes, clock,
  progressCell, attemptText, poll, wireLogout,
} from "/ui/common.js";
import { lineChart } from "/ui/chart.js";

const id = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const cancelButton = document.getElementById("cancel");
const resumeButton = document.getElementById("resume");
const message = document.getElementById("action-message");
// Consecutive events of these types are one line in the history: a run reports hundreds.
const NOISY = new Set(["ProgressReported", "MetricsRecorded"]);
const ROUTINE = new Set([...NOISY, "CheckpointSaved", "CheckpointDeleted"]);
const FOLD_OVER = 10;
const KEEP_AT_ENDS = 3;
const openFolds = new Set();
const RESUMABLE_FROM = new Set(["failed", "cancelled"]);
const SHOWN_DELETED = 3;
// The history, curve and checkpoints are re-read when the operation moves on, and at
// least this often: a long run's log is megabytes, too much to fetch every second.
const DETAILS_EVERY_MS = 5000;
let detailsKey = null;
let detailsAt = 0;
let busy = false;

function text(id, value) {
  document.getElementById(id).textContent = value;
}

function renderHeader(op) {
  document.title = `${op.operation_type} ${op.operation_id.slice(0, 8)} · ktrdr`;
  document.getElementById("status").replaceChildren(statusBadge(op.status));
  text("op-id", op.operation_id);
  text("op-type", op.operation_type);
  const bar = document.querySelector("#progress .bar");
  bar.className = `bar bar-${op.status}`;
  bar.style.width = `${Math.max(0, Math.min(100, Number(op.progress.percentage) || 0))}%`;
  cancelButton.disabled = busy || TERMINAL.has(op.status) || op.cancellation_requested;
  resumeButton.disabled = busy || !(op.resumable && RESUMABLE_FROM.has(op.status));
}

function renderSummary(op) {
  const policy = op.retry_policy || {};
  const rows = [
    ["Progress", `${Number(op.progress.percentage || 0).toFixed(1)}%`
      + (op.progress.current_step ? ` · ${op.progress.current_step}` : "")
      + (op.progress.message ? ` · ${op.progress.message}` : "")],
    ["Attempt", attemptText(op)],
    ["Attempts used", policy.max_attempts ? `${op.attempts_used} of ${policy.max_attempts}` : op.attempts_used],
    ["Worker", op.worker_id],
    ["Created", `${clock(op.created_at)} (${span(seconds(op.created_at))} ago)`],
    ["Started", op.started_at && clock(op.started_at)],
    ["Finished", op.completed_at && clock(op.completed_at)],
    ["Duration", op.started_at && duration(op)],
    ["Parent", op.parent_operation_id && operationLink(op.parent_operation_id, { short: false })],
    ["Next retry", op.next_retry_at && clock(op.next_retry_at)],
    ["Deadline", op.deadline_at && clock(op.deadline_at)],
    ["Cancellation", op.cancellation_requested && !TERMINAL.has(op.status) ? "requested" : null],
    ["Checkpoint failure", op.checkpoint_failure && JSON.stringify(op.checkpoint_failure)],
    ["Resumable", op.resumable ? "yes" : "no"],
  ].filter(([, value]) => value !== null && value !== undefined && value !== "");
  document.getElementById("summary").replaceChildren(
    ...rows.flatMap(([key, value]) => [h("dt", { text: key }), h("dd", {}, value)]));
}

function renderData(op) {
  text("params", JSON.stringify(op.params, null, 2));
  text("result", op.result ? JSON.stringify(op.result, null, 2) : "–");
  document.getElementById("error-box").hidden = !op.error;
  text("error", op.error ? JSON.stringify(op.error, null, 2) : "");
}

function describe(event) {
  const d = event.data;
  switch (event.event_type) {
    case "OperationCreated":
      return d.parent_operation_id ? `child of ${d.parent_operation_id.slice(0, 8)}` : d.operation_type;
    case "OperationClaimed":
    case "ClaimAcknowledged":
      return `worker ${d.worker_id}`;
    case "ClaimReleased":
      return `worker ${d.worker_id}: ${d.reason}`;
    case "ProgressReported":
      return `${Number(d.percentage).toFixed(0)}% · ${d.current_step}`;
    case "MetricsRecorded":
      return `${d.series}: ${d.points.length} point${d.points.length === 1 ? "" : "s"}`;
    case "CheckpointSaved":
      return `#${d.sequence} ${d.checkpoint_type} · ${bytes(d.state_size_bytes + (d.artifacts_size_bytes || 0))}`;
    case "CheckpointSaveFailed":
      return `#${d.sequence} ${d.checkpoint_type}: ${d.message}`;
    case "CheckpointDeleted":
      return `#${d.sequences.join(", #")} · ${d.reason}`;
    case "CancellationRequested":
    case "OperationCancelled":
      return d.reason;
    case "OperationFailed":
      return `${d.reason}: ${d.message}`;
    case "RetryScheduled":
      return `at ${clock(d.retry_at)} · ${d.reason}`;
    case "ResumeRequested":
      return d.from_sequence ? `from checkpoint #${d.from_sequence} (${d.checkpoint_type})` : "from the start";
    default:
      return "";
  }
}

function attemptOf(event) {
  return event.data.attempt ?? event.metadata.attempt ?? null;
}

function eventItem(event, start) {
  const offset = (new Date(event.recorded_at) - start) / 1000;
  const node = h("li", { class: `event event-${event.event_type}`, "data-event-type": event.event_type },
    h("time", { datetime: event.recorded_at, title: clock(event.recorded_at), text: `+${span(offset)}` }),
    h("span", { class: "type", text: event.event_type }), h("span", { class: "count" }),
    h("span", { class: "actor", text: event.metadata.actor || "" }),
    h("span", { class: "detail", text: describe(event) }));
  return { node, type: event.event_type, count: 1, version: event.stream_version };
}

// A long run of routine events shows its ends; the middle is one line that opens.
function folded(run) {
  if (run.length <= FOLD_OVER) return run.map((e) => e.node);
  const middle = run.slice(KEEP_AT_ENDS, -KEEP_AT_ENDS);
  const key = middle[0].version;
  const details = h("details", { open: openFolds.has(key) },
    h("summary", { text: `… ${middle.length} more checkpoint, metrics and progress events` }),
    h("ol", { class: "timeline" }, middle.map((e) => e.node)));
  details.addEventListener("toggle", () => {
    if (details.open) openFolds.add(key); else openFolds.delete(key);
  });
  return [...run.slice(0, KEEP_AT_ENDS).map((e) => e.node), h("li", { class: "folded" }, details),
    ...run.slice(-KEEP_AT_ENDS).map((e) => e.node)];
}

// Events in order, a divider where a new attempt starts, repeated progress or metrics
// reports as one line, and long routine stretches folded.
function renderTimeline(events) {
  const start = events.length ? new Date(events[0].recorded_at) : new Date();
  const items = [];
  let run = [];
  let attempt = null;
  const flush = () => { items.push(...folded(run)); run = []; };
  for (const event of events) {
    const a = attemptOf(event);
    if (a !== null && a !== attempt) {
      flush();
      attempt = a;
      const by = event.data.worker_id ? ` · ${event.data.worker_id}` : "";
      items.push(h("li", { class: "attempt", "data-attempt": a, text: `Attempt ${a}${by}` }));
    }
    const last = run[run.length - 1];
    if (last && NOISY.has(event.event_type) && last.type === event.event_type) {
      last.count += 1;
      last.node.querySelector(".count").textContent = `×${last.count}`;
      last.node.querySelector(".detail").textContent = describe(event);
      continue;
    }
    const entry = eventItem(event, start);
    if (ROUTINE.has(event.event_type)) {
      run.push(entry);
    } else {
      flush();
      items.push(entry.node);
    }
  }
  flush();
  document.getElementById("timeline").replaceChildren(...items);
}

// A completed run is never resumed: its kept checkpoints are only kept.
function checkpointState(op, live) {
  if (!live) return "deleted";
  if (!live.resumable) return "missing";
  return op.status === "completed" ? "kept" : "resumable";
}

// Every checkpoint the log saw: live ones with whether their files are there, deleted ones greyed.
function renderCheckpoints(op, events, history) {
  const saved = new Map();
  const deleted = new Map();
  for (const e of events) {
    if (e.event_type === "CheckpointSaved") saved.set(e.data.sequence, e.data);
    if (e.event_type === "CheckpointDeleted") for (const s of e.data.sequences) deleted.set(s, e.data.reason);
  }
  const live = new Map(history.items.map((c) => [c.sequence, c]));
  const sequences = [...new Set([...saved.keys(), ...live.keys()])].sort((a, b) => a - b);
  const resumePoint = op.resumable ? Math.max(...history.items.filter((c) => c.resumable).map((c) => c.sequence)) : null;
  // A long run deletes hundreds of superseded checkpoints: the older ones are one chip.
  const folded = sequences.filter((seq) => !live.has(seq)).slice(0, -SHOWN_DELETED);
  const shown = sequences.filter((seq) => !folded.includes(seq));
  const canResume = op.resumable && RESUMABLE_FROM.has(op.status);
  const chips = shown.map((seq) => {
    const c = live.get(seq) || saved.get(seq);
    const size = c.total_size_bytes ?? c.state_size_bytes + (c.artifacts_size_bytes || 0);
    const kind = checkpointState(op, live.get(seq));
    const state = { resumable: "resumable", kept: "kept", missing: "files missing" }[kind]
      || `deleted · ${deleted.get(seq) || "gone"}`;
    const next = seq === resumePoint;
    return h("div", { class: `cp cp-${kind}${next ? " cp-next" : ""}`, "data-sequence": seq, "data-state": kind,
      title: c.created_at ? clock(c.created_at) : "" },
      h("strong", { text: `#${seq}` }), h("span", { text: c.checkpoint_type }),
      h("span", { text: bytes(size) }), h("span", { class: "cp-state", text: next ? `${state} · next resume` : state }),
      kind === "resumable" && canResume
        ? h("button", { type: "button", class: "cp-resume", onclick: () => act("resume", seq), text: "resume here" })
        : null);
  });
  if (folded.length) {
    chips.unshift(h("div", { class: "cp cp-deleted", "data-state": "folded" },
      h("strong", { text: `#${folded[0]}–#${folded[folded.length - 1]}` }),
      h("span", { text: `${folded.length} earlier` }), h("span", { class: "cp-state", text: "deleted" })));
  }
  const strip = document.getElementById("checkpoints");
  if (chips.length) strip.replaceChildren(...chips);
  else strip.replaceChildren(h("span", { class: "muted", text: "none saved" }));
}

function equityKey(point) {
  if ("portfolio_value" in point) return "portfolio_value";
  if ("value" in point) return "value";
  return Object.keys(point).find((k) => k !== "bar_index" && typeof point[k] === "number");
}

function renderChart(metrics) {
  const series = metrics.series || {};
  const section = document.getElementById("chart-section");
  let figure = null;
  if (series.epochs && series.epochs.length) {
    text("chart-title", "Loss per epoch");
    figure = lineChart(["train_loss", "val_loss"].map((key) => ({
      name: key, points: series.epochs.map((p) => [p.epoch, p[key]]),
    })), { xLabel: "epoch", yLabel: "loss" });
  } else if (series.equity && series.equity.length) {
    const key = equityKey(series.equity[0]);
    text("chart-title", "Equity");
    figure = lineChart([{ name: key, points: series.equity.map((p) => [p.bar_index, p[key]]) }],
      { xLabel: "bar", yLabel: "equity" });
  }
  section.hidden = !figure;
  if (figure) document.getElementById("chart").replaceChildren(figure);
}

function renderChildren(children) {
  document.getElementById("children-section").hidden = !children.length;
  const rows = children
    .sort((a, b) => a.created_at.localeCompare(b.created_at))
    .map((op) => h("tr", { "data-operation-id": op.operation_id, "data-status": op.status },
      h("td", {}, statusBadge(op.status)),
      h("td", {}, operationLink(op.operation_id)),
      h("td", { text: op.operation_type }),
      progressCell(op),
      h("td", { text: duration(op) }),
      h("td", { text: op.worker_id || "–" })));
  document.querySelector("#children tbody").replaceChildren(...rows);
}

function changes(op) {
  return [op.status, op.attempt, op.checkpoint && op.checkpoint.sequence, op.cancellation_requested,
    op.resumable].join("|");
}

async function refresh() {
  const [op, children] = await Promise.all([
    api(`${V1}/operations/${id}`),
    api(`${V1}/operations?parent_operation_id=${id}&limit=1000`),
  ]);
  renderHeader(op);
  renderSummary(op);
  renderData(op);
  renderChildren(children.items);
  const key = changes(op);
  if (key === detailsKey && Date.now() - detailsAt < DETAILS_EVERY_MS) return;
  const [events, metrics, history] = await Promise.all([
    api(`${V1}/operations/${id}/events`),
    api(`${V1}/operations/${id}/metrics`),
    api(`${V1}/checkpoints/${id}/history`),
  ]);
  renderTimeline(events.items);
  renderCheckpoints(op, events.items, history);
  renderChart(metrics);
  detailsKey = key;
  detailsAt = Date.now();
}

const now = poll(refresh, 1500);
wireLogout();

// The same request as `ktrdr operations cancel|resume`; a sequence picks the checkpoint.
async function act(verb, sequence = null) {
  busy = true;
  for (const button of document.querySelectorAll(".actions button, .cp-resume")) button.disabled = true;
  message.className = "muted";
  message.textContent = verb === "cancel" ? "Cancelling…" : "Resuming…";
  try {
    const body = sequence === null ? {} : { checkpoint_sequence: sequence };
    const out = await api(`${V1}/operations/${id}/${verb}`, { method: "POST", body });
    message.textContent = verb === "cancel"
      ? "Cancellation requested."
      : `Resumed from checkpoint #${out.resumed_from.sequence}: ${out.resumed_from.summary}`;
  } catch (error) {
    message.className = "error";
    message.textContent = `Could not ${verb}: ${error.message}`;
  } finally {
    busy = false;
    now();
  }
}

cancelButton.addEventListener("click", () => act("cancel"));
resumeButton.addEventListener("click", () => act("resume"));
