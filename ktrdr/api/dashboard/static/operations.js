import {
  V1, api, h, statusBadge, operationLink, seconds, span, duration, servedTypes, unserved, poll,
  wireLogout, progressCell, attemptText,
} from "/ui/common.js";

const LIMIT = 200;
const status = document.getElementById("filter-status");
const type = document.getElementById("filter-type");

function readFilters() {
  const query = new URLSearchParams(location.search);
  status.value = query.get("status") || "";
  type.value = query.get("type") || "";
}

function writeFilters() {
  const query = new URLSearchParams();
  if (status.value) query.set("status", status.value);
  if (type.value) query.set("type", type.value);
  history.replaceState(null, "", query.toString() ? `/?${query}` : "/");
}

function row(op, depth, served) {
  const why = unserved(op, served);
  const worker = why ? h("span", { class: "warn", text: why }) : (op.worker_id || "–");
  return h("tr", { "data-operation-id": op.operation_id, "data-status": op.status, class: depth ? "child" : null },
    h("td", {}, statusBadge(op.status)),
    h("td", { class: depth ? "indent" : null }, depth ? "↳ " : null, operationLink(op.operation_id)),
    h("td", { text: op.operation_type }),
    progressCell(op),
    h("td", { text: attemptText(op) }),
    h("td", { text: span(seconds(op.created_at)) }),
    h("td", { text: duration(op) }),
    h("td", {}, worker));
}

// Children under their parent when both are listed; the rest in the API's order.
function grouped(items) {
  const listed = new Set(items.map((op) => op.operation_id));
  const children = new Map();
  for (const op of items) {
    if (op.parent_operation_id && listed.has(op.parent_operation_id)) {
      if (!children.has(op.parent_operation_id)) children.set(op.parent_operation_id, []);
      children.get(op.parent_operation_id).push(op);
    }
  }
  const out = [];
  const visit = (op, depth) => {
    out.push([op, depth]);
    const kids = (children.get(op.operation_id) || []).sort((a, b) => a.created_at.localeCompare(b.created_at));
    for (const kid of kids) visit(kid, depth + 1);
  };
  for (const op of items) if (!(op.parent_operation_id && listed.has(op.parent_operation_id))) visit(op, 0);
  return out;
}

async function refresh() {
  const query = new URLSearchParams({ limit: String(LIMIT) });
  if (status.value) query.set("status", status.value);
  if (type.value) query.set("operation_type", type.value);
  const [page, workers] = await Promise.all([
    api(`${V1}/operations?${query}`),
    api(`${V1}/workers`),
  ]);
  const served = servedTypes(workers.items);
  const rows = grouped(page.items).map(([op, depth]) => row(op, depth, served));
  document.querySelector("#operations tbody").replaceChildren(...rows);
  document.getElementById("empty").hidden = rows.length > 0;
  document.getElementById("count").textContent =
    page.total > page.items.length ? `${page.items.length} of ${page.total}` : `${page.total} operations`;
}

readFilters();
wireLogout();
const now = poll(refresh, 2000);
for (const select of [status, type]) {
  select.addEventListener("change", () => { writeFilters(); now(); });
}
