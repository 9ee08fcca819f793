"""Who may call what: every route has a policy, each role gets what the issue says, and
a worker token acts only as its own worker id. Real tokens on real PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from psycopg import AsyncConnection

from ktrdr.api.app import create_app
from ktrdr.api.policies import policy_for
from ktrdr.bootstrap.system import System
from ktrdr.config import Settings
from ktrdr.domain import operation_stream
from ktrdr.domain.tokens import Role
from ktrdr.handlers import tokens
from ktrdr.projections import replay, timeline
from ktrdr.projections.registry import all_projections
from tests.integration.api.conftest import issue
from tests.integration.api.test_operations_api import API, assert_problem, create

pytestmark = pytest.mark.anyio
Client = AsyncTestClient[Any]

V, OP, W, A = "viewer", "operator", "worker", "admin"
READERS = {V, OP, A}
OPERATORS = {OP, A}
WORKERS = {W, A}
EVERYONE = {"anonymous", V, OP, W, A}
OPS = "/api/v1/operations/{op_id}"

EXPECTED: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/v1/health"): {"anonymous", V, OP, W, A},
    ("GET", "/api/v1/operations"): READERS,
    ("POST", "/api/v1/operations"): OPERATORS,
    ("GET", OPS): READERS | {W},
    ("GET", OPS + "/events"): READERS,
    ("GET", OPS + "/metrics"): READERS,
    ("POST", OPS + "/cancel"): OPERATORS,
    ("POST", OPS + "/resume"): OPERATORS,
    ("POST", OPS + "/acknowledge"): WORKERS,
    ("POST", OPS + "/release"): WORKERS,
    ("POST", OPS + "/progress"): WORKERS,
    ("POST", OPS + "/metrics"): WORKERS,
    ("POST", OPS + "/checkpoints"): WORKERS,
    ("POST", OPS + "/checkpoint-failures"): WORKERS,
    ("POST", OPS + "/complete"): WORKERS,
    ("POST", OPS + "/fail"): WORKERS,
    ("POST", OPS + "/cancelled"): WORKERS,
    ("GET", "/api/v1/checkpoints"): READERS,
    ("GET", "/api/v1/checkpoints/stats"): READERS,
    ("POST", "/api/v1/checkpoints/cleanup"): OPERATORS,
    ("GET", "/api/v1/checkpoints/{op_id}"): READERS | {W},
    ("GET", "/api/v1/checkpoints/{op_id}/history"): READERS,
    ("DELETE", "/api/v1/checkpoints/{op_id}"): OPERATORS,
    ("GET", "/api/v1/workers"): READERS,
    ("POST", "/api/v1/workers"): WORKERS,
    ("POST", "/api/v1/workers/{worker_id}/heartbeat"): WORKERS,
    ("POST", "/api/v1/workers/{worker_id}/claim"): WORKERS,
    ("DELETE", "/api/v1/workers/{worker_id}"): WORKERS,
    ("GET", "/api/v1/operation-types"): READERS,
    # The dashboard's pages hold no data (the API calls they make are checked).
    **{
        (method, page): EVERYONE
        for method, page in (
            ("GET", "/"),
            ("GET", "/operations/{op_id}"),
            ("GET", "/workers"),
            ("GET", "/favicon.ico"),
            ("GET", "/login"),
            ("POST", "/login"),
            ("POST", "/logout"),
            ("GET", "/ui/{file_path}"),
            ("HEAD", "/ui/{file_path}"),
        )
    },
}
"""The issue's roles, written out by hand: the policy table must agree with it."""

WORKER_ID = "matrix-worker"
REGISTRATION = {"worker_type": "training", "host": "h", "pid": 1, "version": "t"}


def routes(app: Litestar) -> set[tuple[str, str]]:
    return {
        (method, route.path_format)
        for route in app.routes
        for handler in route.route_handlers  # type: ignore[attr-defined]
        for method in handler.http_methods
        if method != "OPTIONS" and not route.path_format.startswith("/schema")
    }


def test_every_route_has_a_policy_and_the_matrix_names_it(app: Litestar) -> None:
    found = routes(app)
    assert {r for r in found if policy_for(*r) is None} == set()
    assert found == set(EXPECTED), "a route was added or removed: give it a row in EXPECTED"


def _body(method: str, template: str) -> dict[str, Any] | None:
    if method != "POST":
        return None
    if template == "/api/v1/workers":
        return {"worker_id": WORKER_ID, **REGISTRATION}
    if template == "/api/v1/operations":
        return {"operation_type": "training"}
    if template.endswith("/claim"):
        return {"wait_seconds": 0}
    if template.startswith(OPS) and template.rsplit("/", 1)[1] not in ("cancel", "resume"):
        return {"worker_id": WORKER_ID, "attempt": 1}
    return {}


@pytest.fixture
async def role_tokens(settings: Settings, database_url: str) -> dict[str, str]:
    made = {
        role: await issue(settings, database_url, f"{role}-1", Role(role)) for role in (V, OP, A)
    }
    made[W] = await issue(settings, database_url, "worker-1", Role.WORKER, WORKER_ID)
    return made


async def test_role_by_route_matrix(
    app: Litestar, client: Client, role_tokens: dict[str, str]
) -> None:
    op = await create(client)
    table: list[str] = []
    wrong: list[str] = []
    for method, template in sorted(EXPECTED, key=lambda r: (r[1], r[0])):
        path = template.replace("{op_id}", op).replace("{worker_id}", WORKER_ID)
        row = []
        for who in ("anonymous", V, OP, W, A):
            headers = {} if who == "anonymous" else {"Authorization": f"Bearer {role_tokens[who]}"}
            body = _body(method, template)
            response = await client.request(
                method, path, json=body, headers={"Authorization": "", **headers}
            )
            status = response.status_code
            row.append(str(status))
            if who in EXPECTED[(method, template)]:
                ok = status not in (401, 403) and status < 500
            else:
                ok = status == (401 if who == "anonymous" else 403)
            if not ok:
                wrong.append(f"{who} {method} {template}: {status} {response.text[:200]}")
        table.append(f"{method:6} {template:48} " + " ".join(f"{s:>5}" for s in row))
    print("\n" + f"{'':55} anon viewer operator worker admin")
    print("\n".join(table))
    assert not wrong, "\n".join(wrong)


async def test_no_token_or_a_bad_one_is_401_problem_json(client: Client) -> None:
    for header in ("", "Bearer", "Bearer nope", "Basic dXNlcjpwYXNz"):
        response = await client.get(f"{API}/operations", headers={"Authorization": header})
        assert_problem(response, 401, "UNAUTHENTICATED")
        assert response.headers["www-authenticate"] == "Bearer"
    assert (await client.get(f"{API}/health", headers={"Authorization": ""})).status_code == 200


async def test_revocation_holds_from_the_next_request(
    client: Client, system: System, settings: Settings, database_url: str
) -> None:
    secret = await issue(settings, database_url, "soon-gone", Role.VIEWER)
    auth = {"Authorization": f"Bearer {secret}"}
    assert (await client.get(f"{API}/operations", headers=auth)).status_code == 200
    async with system.pool.connection() as conn:
        [listed] = [t for t in await tokens.list_tokens(conn) if t["name"] == "soon-gone"]
    assert listed["last_used_at"] is not None and "secret_sha256" not in listed
    await tokens.revoke_token(system.event_log, system.bus.clock, listed["token_id"], actor="t")
    assert_problem(await client.get(f"{API}/operations", headers=auth), 401, "UNAUTHENTICATED")


async def test_a_worker_token_acts_only_as_its_own_worker(
    client: Client, settings: Settings, database_url: str
) -> None:
    bound = await issue(settings, database_url, "bound", Role.WORKER, "w-bound")
    free = await issue(settings, database_url, "free", Role.WORKER)
    other = await issue(settings, database_url, "other", Role.WORKER)
    as_bound, as_free, as_other = ({"Authorization": f"Bearer {t}"} for t in (bound, free, other))

    async def register(worker_id: str, headers: dict[str, str]) -> int:
        body = {"worker_id": worker_id, **REGISTRATION}
        return (await client.post(f"{API}/workers", json=body, headers=headers)).status_code

    assert await register("w-bound", as_bound) == 201
    assert await register("w-else", as_bound) == 403
    assert await register("w-bound", as_free) == 403  # bound to another token at issue
    assert await register("w-free", as_free) == 201  # first registration binds it
    assert await register("w-free", as_other) == 403
    assert await register("w-free", as_free) == 201
    beat = await client.post(f"{API}/workers/w-free/heartbeat", json={}, headers=as_other)
    assert_problem(beat, 403, "FORBIDDEN")
    assert (
        await client.post(f"{API}/workers/w-free/heartbeat", json={}, headers=as_free)
    ).is_success

    # The fencing tuple is public (GET /operations/{id}); the token is what it lacks.
    op = await create(client)
    claimed = await client.post(
        f"{API}/workers/w-free/claim", json={"wait_seconds": 0}, headers=as_free
    )
    assert claimed.status_code == 200 and claimed.json()["operation_id"] == op
    forged = {"worker_id": "w-free", "attempt": 1, "result": {"forged": True}}
    for headers in (
        as_other,
        as_bound,
        {"Authorization": f"Bearer {await viewer(settings, database_url)}"},
    ):
        response = await client.post(
            f"{API}/operations/{op}/complete", json=forged, headers=headers
        )
        assert_problem(response, 403, "FORBIDDEN")
    assert (await client.get(f"{API}/operations/{op}")).json()["status"] == "running"


async def viewer(settings: Settings, database_url: str) -> str:
    return await issue(settings, database_url, "a-viewer", Role.VIEWER)


async def test_each_event_a_request_appends_names_its_principal(
    client: Client, system: System, settings: Settings, database_url: str
) -> None:
    secret = await issue(settings, database_url, "alice", Role.OPERATOR)
    auth = {"Authorization": f"Bearer {secret}"}
    created = await client.post(
        f"{API}/operations", json={"operation_type": "training"}, headers=auth
    )
    op = created.json()["operation_id"]
    await client.post(f"{API}/operations/{op}/cancel", headers=auth)
    events = await system.event_log.read_stream(operation_stream(op))
    assert [(e.event_type, e.metadata["principal"]) for e in events] == [
        ("OperationCreated", "alice"),
        ("OperationCancelled", "alice"),
    ]
    shown = (await client.get(f"{API}/operations/{op}/events")).json()["items"]
    assert shown[-1]["metadata"]["principal"] == "alice"
    assert timeline.key_fields(events[-1])["by"] == "user:alice"  # what `ktrdr events` shows


async def test_a_body_that_is_not_json_is_415(client: Client) -> None:
    form = await client.post(
        f"{API}/operations",
        content=b"operation_type=training",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(form, 415, "UNSUPPORTED_MEDIA_TYPE")
    text = await client.post(
        f"{API}/operations",
        content=b'{"operation_type": "training"}',
        headers={"Content-Type": "text/plain"},
    )
    assert_problem(text, 415, "UNSUPPORTED_MEDIA_TYPE")
    op = await create(client)
    cancel = await client.post(
        f"{API}/operations/{op}/cancel", content=b"", headers={"Content-Type": "text/plain"}
    )
    assert_problem(cancel, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert (await client.post(f"{API}/operations/{op}/cancel")).status_code == 200


async def test_with_auth_off_requests_act_as_anonymous(
    settings: Settings, database_url: str, system: System
) -> None:
    app = create_app(
        settings.model_copy(update={"auth": "off"}), database_url=database_url, run_processors=False
    )
    async with AsyncTestClient(app=app) as anyone:
        created = await anyone.post(f"{API}/operations", json={"operation_type": "training"})
        assert created.status_code == 201, created.text
        form = await anyone.post(
            f"{API}/operations", content=b"a=b", headers={"Content-Type": "text/plain"}
        )
        assert_problem(form, 415, "UNSUPPORTED_MEDIA_TYPE")
    [event] = await system.event_log.read_stream(operation_stream(created.json()["operation_id"]))
    assert event.metadata["principal"] == "anonymous"


async def test_a_worker_token_with_a_malformed_body_is_a_4xx(
    client: Client, settings: Settings, database_url: str
) -> None:
    auth = {"Authorization": f"Bearer {await issue(settings, database_url, 'w', Role.WORKER)}"}
    op = await create(client)
    for body in (b"{", b"[1]", b'{"worker_id": 7}', b"[" * 300 + b"]" * 300):
        response = await client.post(
            f"{API}/operations/{op}/progress",
            content=body,
            headers={**auth, "Content-Type": "application/json"},
        )
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_the_tokens_read_model_rebuilds_from_the_log(
    client: Client, system: System, settings: Settings, database_url: str
) -> None:
    free = await issue(settings, database_url, "free", Role.WORKER)
    body = {"worker_id": "w-replayed", **REGISTRATION}
    headers = {"Authorization": f"Bearer {free}"}
    assert (await client.post(f"{API}/workers", json=body, headers=headers)).status_code == 201
    async with system.pool.connection() as conn:
        [listed] = [t for t in await tokens.list_tokens(conn) if t["name"] == "free"]
    await tokens.revoke_token(system.event_log, system.bus.clock, listed["token_id"], actor="t")
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        assert (await replay.verify(conn, all_projections())).ok
        await conn.execute("DELETE FROM worker_tokens")
        assert not (await replay.verify(conn, all_projections())).ok
        await replay.rebuild(conn, all_projections())
        assert (await replay.verify(conn, all_projections())).ok
        cur = await conn.execute("SELECT worker_id FROM worker_tokens")
        assert await cur.fetchall() == [("w-replayed",)]
