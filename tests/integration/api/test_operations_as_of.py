"""GET /api/v1/operations/{id}?as_of_version=N: the operation folded from its stream up to N."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.integration.api.test_operations_api import assert_problem
from tests.integration.recorded import RESULT, STATUS_AFTER, WORKER_A, WORKER_B, record

pytestmark = pytest.mark.anyio
API = "/api/v1"
Client = AsyncTestClient[Any]


@pytest.fixture
async def operation_id(database_url: str, tmp_path: Path, client: Client) -> str:
    return (await record(database_url, tmp_path)).operation_id


async def as_of(client: Client, op: str, version: int | str) -> Any:
    return await client.get(f"{API}/operations/{op}", params={"as_of_version": version})


async def test_the_last_version_is_the_live_operation(client: Client, operation_id: str) -> None:
    live = await client.get(f"{API}/operations/{operation_id}")
    folded = await as_of(client, operation_id, 11)
    assert folded.status_code == 200, folded.text
    assert folded.json() == live.json()
    assert folded.json()["status"] == "completed" and folded.json()["result"] == RESULT


async def test_earlier_versions_show_earlier_states(client: Client, operation_id: str) -> None:
    statuses = {v: (await as_of(client, operation_id, v)).json()["status"] for v in STATUS_AFTER}
    assert statuses == STATUS_AFTER

    created = (await as_of(client, operation_id, 1)).json()
    assert created["attempt"] == 0 and created["worker_id"] is None
    assert created["started_at"] is None and created["checkpoint"] is None
    assert created["created_at"] == "2025-06-01T12:00:10+00:00"

    orphaned = (await as_of(client, operation_id, 7)).json()
    assert orphaned["error"] == {"reason": "orphaned", "message": f"worker {WORKER_A} went silent"}
    assert (orphaned["attempt"], orphaned["worker_id"]) == (1, WORKER_A)
    checkpoint = orphaned["checkpoint"]
    assert (checkpoint["sequence"], checkpoint["summary"]) == (2, "epoch 4")
    assert orphaned["resumable"] is True and orphaned["progress"]["percentage"] == 40.0

    resumed = (await as_of(client, operation_id, 9)).json()
    assert (resumed["attempt"], resumed["worker_id"]) == (2, WORKER_B)
    assert resumed["error"] is None and resumed["resumable"] is False
    assert resumed["started_at"] == created["created_at"].replace("12:00:10", "12:00:20")


@pytest.mark.parametrize("version", [0, -1])
async def test_a_version_below_one_is_a_validation_error(
    client: Client, operation_id: str, version: int
) -> None:
    assert_problem(await as_of(client, operation_id, version), 400, "VALIDATION_ERROR")


async def test_a_version_beyond_the_stream_is_a_validation_error(
    client: Client, operation_id: str
) -> None:
    body = assert_problem(await as_of(client, operation_id, 12), 422, "VALIDATION_ERROR")
    assert body["detail"] == (
        f"version 12 is not in the stream of operation {operation_id}, which has versions 1 to 11"
    )
    assert_problem(await as_of(client, operation_id, "seven"), 400, "VALIDATION_ERROR")


async def test_an_unknown_operation_is_not_found(client: Client) -> None:
    assert_problem(await as_of(client, str(uuid.uuid4()), 1), 404, "OPERATION_NOT_FOUND")
    assert_problem(await as_of(client, "not-a-uuid", 1), 400, "VALIDATION_ERROR")
