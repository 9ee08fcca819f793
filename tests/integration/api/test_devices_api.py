"""CUDA routing and device changes through the API, on real PostgreSQL: a CUDA operation
waits (and says why) until a worker that registered CUDA claims it, CPU work flows past
it meanwhile, and a resume on another device is refused unless allowed explicitly."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from ktrdr.bootstrap.system import System
from tests.integration.api import drive
from tests.integration.api.test_operations_api import API, assert_problem, create
from tests.integration.api.test_workers_api import claim, register

pytestmark = pytest.mark.anyio
Client = AsyncTestClient[Any]

H200 = {"device_count": 1, "devices": [{"name": "NVIDIA H200", "memory_bytes": 150_000_000_000}]}


async def get(client: Client, op: str) -> dict[str, Any]:
    response = await client.get(f"{API}/operations/{op}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_cuda_work_waits_for_a_cuda_worker_and_cpu_work_flows_past_it(
    client: Client,
) -> None:
    await register(client, "cpu-1", capabilities=["training"])
    cuda_op = await create(client, "training", device="cuda")
    cpu_ops = [await create(client, "training"), await create(client, "training", device="cpu")]

    waiting = await get(client, cuda_op)
    assert waiting["status"] == "pending" and waiting["waiting_for"] == "cuda"
    assert waiting["waiting_reason"].startswith("no live training worker has CUDA")
    assert (await get(client, cpu_ops[0]))["waiting_for"] is None

    for op in cpu_ops:  # queued behind the CUDA operation, claimed first anyway
        claimed = await claim(client, "cpu-1")
        assert claimed is not None and claimed["operation_id"] == op
    assert await claim(client, "cpu-1") is None
    assert (await get(client, cuda_op))["status"] == "pending"

    await register(client, "gpu-1", capabilities=["training", "cuda"], cuda=H200)
    assert (await get(client, cuda_op))["waiting_reason"] is None
    claimed = await claim(client, "gpu-1")
    assert claimed is not None and claimed["operation_id"] == cuda_op

    workers = {w["worker_id"]: w for w in (await client.get(f"{API}/workers")).json()["items"]}
    assert workers["gpu-1"]["cuda"] == H200 and "cuda" in workers["gpu-1"]["capabilities"]
    assert workers["cpu-1"]["cuda"] is None


async def test_a_cuda_worker_takes_cpu_work_too(client: Client) -> None:
    await register(client, "gpu-1", capabilities=["training", "cuda"], cuda=H200)
    op = await create(client, "training")
    claimed = await claim(client, "gpu-1")
    assert claimed is not None and claimed["operation_id"] == op


async def test_cuda_work_waits_again_once_its_cuda_worker_is_gone(client: Client) -> None:
    await register(client, "gpu-1", capabilities=["training", "cuda"], cuda=H200)
    op = await create(client, "training", device="cuda")
    assert (await get(client, op))["waiting_for"] is None
    gone = await client.delete(f"{API}/workers/gpu-1")
    assert gone.status_code == 200, gone.text
    assert (await get(client, op))["waiting_for"] == "cuda"


@pytest.mark.parametrize(
    "params",
    [{"device": "gpu"}, {"device": "CUDA"}, {"precision": "16"}, {"precision": 32}],
)
async def test_a_bad_device_or_precision_is_refused_at_create(
    client: Client, params: dict[str, Any]
) -> None:
    response = await client.post(
        f"{API}/operations", json={"operation_type": "training", "params": params}
    )
    body = assert_problem(response, 422, "VALIDATION_ERROR")
    assert next(iter(params)) in body["detail"]
    assert (await client.get(f"{API}/operations")).json()["total"] == 0


async def failed_on_cuda(client: Client, system: System, **params: Any) -> str:
    op = await create(client, "training", **params)
    await drive.claim(system, op)
    await drive.checkpoint(system, op, {"epoch": 1, "device": "cuda", "devices": ["cuda"]})
    await drive.fail(system, op)
    return op


async def test_a_resume_on_another_device_is_refused_then_allowed_explicitly(
    client: Client, system: System
) -> None:
    op = await failed_on_cuda(client, system, device="cuda")
    before = await get(client, op)
    refused = await client.post(f"{API}/operations/{op}/resume", json={"device": "cpu"})
    body = assert_problem(refused, 409, "DEVICE_CHANGE_REFUSED")
    assert "made on cuda" in body["detail"] and "allow_device_change" in body["detail"]
    assert await get(client, op) == before

    allowed = await client.post(
        f"{API}/operations/{op}/resume", json={"device": "cpu", "allow_device_change": True}
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["device"] == "cpu"
    await register(client, "cpu-1", capabilities=["training"])
    claimed = await claim(client, "cpu-1")
    assert claimed is not None and claimed["operation_id"] == op
    assert claimed["params"] == {"device": "cpu", "allow_device_change": True}


async def test_an_auto_run_resumes_on_the_device_of_its_checkpoint(
    client: Client, system: System
) -> None:
    op = await failed_on_cuda(client, system)
    resumed = await client.post(f"{API}/operations/{op}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["device"] == "cuda"
    now = await get(client, op)
    assert now["params"] == {"device": "cuda"} and now["waiting_for"] == "cuda"
    await register(client, "cpu-1", capabilities=["training"])
    assert await claim(client, "cpu-1") is None
