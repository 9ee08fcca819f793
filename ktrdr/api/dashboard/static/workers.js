import {
  V1, api, h, operationLink, span, clock, servedTypes, unserved, poll, wireLogout,
} from "/ui/common.js";

const showDeregistered = document.getElementById("show-deregistered");
const ALIVE = new Set(["available", "busy"]);

function statusCell(worker) {
  const alive = ALIVE.has(worker.status);
  return h("td", {},
    h("span", { class: `status worker-${worker.status}`, "data-status": worker.status,
      text: alive ? `alive · ${worker.status === "busy" ? "busy" : "idle"}` : worker.status }));
}

function row(worker) {
  return h("tr", { "data-worker-id": worker.worker_id, "data-status": worker.status },
    h("td", { text: worker.worker_id }),
    h("td", { text: worker.worker_type }),
    statusCell(worker),
    h("td", {}, worker.current_operation_id ? operationLink(worker.current_operation_id) : "–"),
    h("td", { text: worker.current_attempt ?? "–" }),
    h("td", { class: worker.status === "lost" ? "warn" : null, text: span(worker.heartbeat_age_seconds) }),
    h("td", { text: `${worker.host} · ${worker.pid}` }),
    h("td", { text: worker.version }),
    h("td", { text: clock(worker.registered_at) }));
}

// One line per operation type that has work waiting and no live worker to take it.
function warnings(waiting, served) {
  const byType = new Map();
  for (const op of waiting) {
    if (!unserved(op, served)) continue;
    if (!byType.has(op.operation_type)) byType.set(op.operation_type, []);
    byType.get(op.operation_type).push(op);
  }
  return [...byType].map(([kind, ops]) =>
    h("p", { class: "warn", "data-operation-type": kind },
      `${ops.length} ${kind} operation${ops.length > 1 ? "s" : ""} waiting and no live ${kind} worker: `,
      ...ops.slice(0, 10).flatMap((op) => [operationLink(op.operation_id), " "])));
}

async function refresh() {
  const query = new URLSearchParams({ include_lost: "true" });
  if (showDeregistered.checked) query.set("include_deregistered", "true");
  const [workers, pending, resuming] = await Promise.all([
    api(`${V1}/workers?${query}`),
    api(`${V1}/operations?status=pending&limit=1000`),
    api(`${V1}/operations?status=resuming&limit=1000`),
  ]);
  const served = servedTypes(workers.items);
  document.getElementById("unserved").replaceChildren(...warnings([...pending.items, ...resuming.items], served));
  document.querySelector("#workers tbody").replaceChildren(...workers.items.map(row));
  document.getElementById("empty").hidden = workers.items.length > 0;
  const alive = workers.items.filter((w) => ALIVE.has(w.status)).length;
  document.getElementById("count").textContent = `${alive} alive of ${workers.total}`;
}

wireLogout();
const now = poll(refresh, 2000);
showDeregistered.addEventListener("change", () => now());
