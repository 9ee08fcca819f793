"""/api/v1/operations on real PostgreSQL: every endpoint and every error code."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from ktrdr.bootstrap.system import System
from tests.integration.api import drive

pytestmark = pytest.mark.anyio
API = "/api/v1"
Client = AsyncTestClient[Any]


async def create(client: Client, operation_type: str = "training", **params: Any) -> str:
    response = await client.post(
        f"{API}/operations", json={"operation_type": operation_type, "params": params}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["operation_id"])


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status
    assert body["title"] and body["detail"]
    return body


async def test_create_then_get_sees_the_write(client: Client) -> None:
    response = await client.post(
        f"{API}/operations", json={"operation_type": "training", "params": {"epochs": 3}}
    )
    assert response.status_code == 201
    created = response.json()
    assert created["status"] == "pending" and created["params"] == {"epochs": 3}
    assert set(created) >= {
        "operation_id",
        "operation_type",
        "status",
        "params",
        "parent_operation_id",
        "progress",
        "attempt",
        "worker_id",
        "created_at",
        "started_at",
        "completed_at",
        "error",
        "result",
        "checkpoint",
        "resumable",
    }
    assert set(created["progress"]) >= {"percentage", "current_step", "message"}
    fetched = (await client.get(f"{API}/operations/{created['operation_id']}")).json()
    assert fetched == created
    assert fetched["checkpoint"] is None and fetched["resumable"] is False


async def test_list_filters_and_pages(client: Client, system: System) -> None:
    training = [await create(client, "training") for _ in range(3)]
    backtest = await create(client, "backtesting")
    await drive.failed_with_checkpoints(system, training[0], [1, 2])

    everything = (await client.get(f"{API}/operations")).json()
    assert everything["total"] == 4 and len(everything["items"]) == 4
    only = (await client.get(f"{API}/operations", params={"operation_type": "backtesting"})).json()
    assert [o["operation_id"] for o in only["items"]] == [backtest]
    failed = (await client.get(f"{API}/operations", params={"status": "failed"})).json()
    assert [o["operation_id"] for o in failed["items"]] == [training[0]]
    resumable = (await client.get(f"{API}/operations", params={"resumable": "true"})).json()
    assert [o["operation_id"] for o in resumable["items"]] == [training[0]]
    assert resumable["items"][0]["checkpoint"]["summary"] == "epoch 2"
    page = (await client.get(f"{API}/operations", params={"limit": 2, "offset": 1})).json()
    assert page["total"] == 4 and len(page["items"]) == 2


async def test_list_by_id_prefix(client: Client) -> None:
    ids = [await create(client) for _ in range(40)]

    async def matching(prefix: str) -> set[str]:
        params = {"id_prefix": prefix, "limit": 1000}
        page = (await client.get(f"{API}/operations", params=params)).json()
        assert page["total"] == len(page["items"])
        return {o["operation_id"] for o in page["items"]}

    for op in ids[:5]:
        for length in (1, 2, 8, 10, 36):
            prefix = op[:length]
            assert await matching(prefix) == {i for i in ids if i.startswith(prefix)}, prefix
        assert await matching(op[:13].upper().replace("-", "")) == {op}
    assert await matching("0" * 32) == set()
    for bad in ("xyz", "", "0" * 33):
        response = await client.get(f"{API}/operations", params={"id_prefix": bad})
        assert_problem(response, 422, "VALIDATION_ERROR")


async def test_cancel_pending_is_immediate(client: Client) -> None:
    op = await create(client)
    response = await client.post(f"{API}/operations/{op}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


async def test_cancel_running_asks_the_worker(client: Client, system: System) -> None:
    op = await create(client)
    await drive.claim(system, op)
    response = await client.post(f"{API}/operations/{op}/cancel")
    assert response.json()["status"] == "running"
    assert response.json()["cancellation_requested"] is True


async def test_resume_latest_and_earlier_checkpoint(client: Client, system: System) -> None:
    op = await create(client)
    await drive.failed_with_checkpoints(system, op, [1, 2, 3])
    response = await client.post(f"{API}/operations/{op}/resume", json={"checkpoint_sequence": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "resuming"
    assert body["resumed_from"]["sequence"] == 2 and body["resumed_from"]["summary"] == "epoch 2"
    assert body["resumed_from"]["checkpoint_type"] == "periodic"

    other = await create(client)
    await drive.failed_with_checkpoints(system, other, [5])
    latest = (await client.post(f"{API}/operations/{other}/resume")).json()
    assert latest["resumed_from"]["sequence"] == 1


@pytest.mark.parametrize("status", ["pending", "running", "resuming", "completed"])
async def test_resume_refused_with_operation_not_resumable(
    client: Client, system: System, status: str
) -> None:
    op = await create(client)
    if status in ("running", "resuming", "completed"):
        await drive.failed_with_checkpoints(system, op, [1])
        await client.post(f"{API}/operations/{op}/resume")
        if status in ("running", "completed"):
            await drive.claim(system, op)
        if status == "completed":
            from ktrdr.domain import CompleteOperation

            current = await system.bus.states.operation(op)
            assert current is not None
            await system.bus.operation(
                CompleteOperation(
                    operation_id=op,
                    at=system.bus.clock(),
                    worker_id=drive.WORKER,
                    attempt=current.attempt,
                    result={},
                ),
                actor=f"worker:{drive.WORKER}",
            )
    before = (await client.get(f"{API}/operations/{op}")).json()
    assert before["status"] == status
    body = assert_problem(
        await client.post(f"{API}/operations/{op}/resume"), 409, "OPERATION_NOT_RESUMABLE"
    )
    assert status in body["detail"]
    assert (await client.get(f"{API}/operations/{op}")).json() == before


async def test_resume_unknown_operation_or_checkpoint_changes_nothing(
    client: Client, system: System
) -> None:
    assert_problem(
        await client.post(f"{API}/operations/{uuid.uuid4()}/resume"), 404, "OPERATION_NOT_FOUND"
    )
    op = await create(client)
    await drive.failed_with_checkpoints(system, op, [1])
    before = (await client.get(f"{API}/operations/{op}")).json()
    assert_problem(
        await client.post(f"{API}/operations/{op}/resume", json={"checkpoint_sequence": 7}),
        404,
        "CHECKPOINT_NOT_FOUND",
    )
    assert (await client.get(f"{API}/operations/{op}")).json() == before
    cancelled = await create(client)
    await client.post(f"{API}/operations/{cancelled}/cancel")
    assert_problem(
        await client.post(f"{API}/operations/{cancelled}/resume"), 404, "CHECKPOINT_NOT_FOUND"
    )


async def test_events_of_an_operation(client: Client, system: System) -> None:
    op = await create(client)
    await drive.failed_with_checkpoints(system, op, [1])
    body = (await client.get(f"{API}/operations/{op}/events")).json()
    assert [e["event_type"] for e in body["items"]] == [
        "OperationCreated",
        "OperationClaimed",
        "ClaimAcknowledged",
        "CheckpointSaved",
        "OperationFailed",
    ]
    assert [e["stream_version"] for e in body["items"]] == [1, 2, 3, 4, 5]
    assert body["items"][1]["metadata"]["attempt"] == 1
    assert_problem(
        await client.get(f"{API}/operations/{uuid.uuid4()}/events"), 404, "OPERATION_NOT_FOUND"
    )


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("post", "/operations", {"json": {"operation_type": "dancing"}}, 422),
        ("post", "/operations", {"json": {"operation_type": 7}}, 422),
        ("post", "/operations", {"json": {"operation_type": "training", "params": []}}, 422),
        ("post", "/operations", {"json": {"operation_type": "training", "nope": 1}}, 422),
        ("get", "/operations/not-a-uuid", {}, 422),
        ("post", "/operations/not-a-uuid/cancel", {}, 422),
        ("get", "/operations", {"params": {"status": "sleeping"}}, 422),
        ("get", "/operations", {"params": {"limit": "0"}}, 422),
        ("get", "/operations", {"params": {"limit": "many"}}, 422),
        (
            "post",
            "/operations/00000000-0000-4000-8000-000000000000/resume",
            {"json": {"checkpoint_sequence": 0}},
            422,
        ),
    ],
)
async def test_bad_input_is_a_validation_error_never_a_500(
    client: Client, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    response = await getattr(client, method)(API + path, **kwargs)
    assert_problem(response, status, "VALIDATION_ERROR")


async def test_a_body_that_is_not_json_is_a_bad_request(client: Client) -> None:
    response = await client.post(
        f"{API}/operations",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert "JSON is malformed" in assert_problem(response, 400, "BAD_REQUEST")["detail"]


async def test_oversized_body_is_refused(client: Client) -> None:
    blob = "x" * (17 * 1024 * 1024)
    response = await client.post(
        f"{API}/operations", json={"operation_type": "training", "params": {"blob": blob}}
    )
    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert (await client.get(f"{API}/operations")).json()["total"] == 0


async def test_unknown_route_is_a_problem(client: Client) -> None:
    assert_problem(await client.get(f"{API}/nothing-here"), 404, "NOT_FOUND")
