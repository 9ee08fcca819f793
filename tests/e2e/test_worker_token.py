"""A real `ktrdr worker` on a worker token: it runs an operation to the end as the one
worker id its token is bound to, and the log names the token for every write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import Cluster, cluster
from tests.e2e.test_db_cli import run

COUNTER = {"epochs": 20, "checkpoint_every_epochs": 5}


@pytest.fixture
def c(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    yield from cluster(database_url, tmp_path)


def test_a_worker_on_a_worker_token_runs_an_operation(c: Cluster) -> None:
    c.start_server()
    created = run(
        ["tokens", "create", "--role", "worker", "--name", "gpu-1", "--worker-id", "w-1", "--json"],
        c.env(),
    )
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["token"]
    c.start_worker("w-1", env={"KTRDR_API_TOKEN": token}, step_seconds=0.05)
    op = c.start(**COUNTER)
    done = c.wait_status(op, "completed")
    assert done["worker_id"] == "w-1"
    by = {e["event_type"]: e["metadata"].get("principal") for e in c.events(op)}
    assert by["OperationCreated"] == "admin"  # the token `ktrdr serve` wrote
    assert by["ClaimAcknowledged"] == by["CheckpointSaved"] == by["OperationCompleted"] == "gpu-1"

    # The same token cannot stand in for another worker id, nor create work.
    auth = {"Authorization": f"Bearer {token}"}
    body = {"worker_id": "w-2", "worker_type": "training", "host": "h", "pid": 1, "version": "t"}
    as_other = httpx.post(f"{c.url}/api/v1/workers", json=body, headers=auth, timeout=10)
    assert as_other.status_code == 403 and as_other.json()["code"] == "FORBIDDEN"
    create = httpx.post(
        f"{c.url}/api/v1/operations", json={"operation_type": "training"}, headers=auth, timeout=10
    )
    assert create.status_code == 403
