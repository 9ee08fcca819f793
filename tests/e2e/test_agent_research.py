"""Agent research end to end: a real `ktrdr serve` runs the manager, real `ktrdr worker`
processes train (torch) and backtest, and the backend gets killed with -9."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import KTRDR, Cluster, cluster, free_port, wait_until

pytestmark = pytest.mark.timeout(120)

# Long enough to cancel mid-way, short enough for a test: ~40 small epochs. Seed 6 designs
# a model_signal strategy, so the verdict depends on the trained model itself.
LONG_TRAINING = {"seed": 6, "training": {"epochs": 40, "bars": 3000}}
LONG_BACKTEST = {"bars": 500_000, "checkpoint_every_bars": 20_000}


@pytest.fixture
def c(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    yield from cluster(database_url, tmp_path)


def with_workers(c: Cluster, *types: str, **hooks: object) -> None:
    for worker_type in types:
        c.start_worker(f"{worker_type}-1", worker_type, workload=None, **hooks)


def children(c: Cluster, op: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = c.get("/operations", parent_operation_id=op)["items"]
    return sorted(items, key=lambda o: o["created_at"])


def child(c: Cluster, op: str, operation_type: str) -> dict[str, Any] | None:
    return next((k for k in children(c, op) if k["operation_type"] == operation_type), None)


def research(c: Cluster, params: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    op = c.start("agent_research", **params)
    return c.wait_status(op, {"completed", "failed"}, timeout=timeout)


def outcome(result: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on interruptions: the study, its numbers and its verdict."""
    keep = ("strategy", "metrics", "verdict", "reasons", "thresholds")
    return {
        **{k: result[k] for k in keep},
        "model_sha256": result["training"]["model_sha256"],
        "epochs_completed": result["training"]["epochs_completed"],
    }


def checkpoint_phases(c: Cluster, op: str) -> list[tuple[str, str]]:
    """From the log: a completed research's checkpoints are cleaned up."""
    saved = [e["data"] for e in c.events(op) if e["event_type"] == "CheckpointSaved"]
    return [(d["checkpoint_type"], d["state"]["phase"]) for d in saved]


def listed(c: Cluster) -> str:
    shown = subprocess.run(
        [*KTRDR, "operations", "list", "--type", "agent_research", "--url", c.url],
        capture_output=True,
        text=True,
        timeout=30,
        env=c.env(COLUMNS="250"),
    )
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def test_a_full_run_with_real_training_and_backtesting(c: Cluster) -> None:
    c.start_server()
    with_workers(c, "training", "backtesting")
    started = time.monotonic()
    done = research(c, {"seed": 5})
    elapsed = time.monotonic() - started
    print(f"agent research {{'seed': 5}}: {elapsed:.1f}s")
    assert done["status"] == "completed", c.logs()
    assert elapsed < 45

    result = done["result"]
    assert result["verdict"] in ("accepted", "rejected") and result["reasons"]
    assert {"sharpe_ratio", "max_drawdown", "total_trades"} <= result["metrics"].keys()
    kids = children(c, done["operation_id"])
    assert [(k["operation_type"], k["status"]) for k in kids] == [
        ("training", "completed"),
        ("backtesting", "completed"),
    ]
    assert result["training_operation_id"] == kids[0]["operation_id"]
    assert result["backtest_operation_id"] == kids[1]["operation_id"]
    assert kids[1]["params"]["strategy"] == result["strategy"]
    assert result["strategy"]["name"] == "model_signal"  # what seed 5 designs
    assert kids[1]["params"]["model_operation_id"] == kids[0]["operation_id"]
    assert [p for _, p in checkpoint_phases(c, done["operation_id"])] == [
        "training",
        "backtesting",
        "assessing",
    ]


def test_cancel_during_training_then_resume_ends_as_an_uninterrupted_run(c: Cluster) -> None:
    c.start_server()
    with_workers(c, "training", "backtesting")
    expected = research(c, LONG_TRAINING)
    assert expected["status"] == "completed", c.logs()

    op = c.start("agent_research", **LONG_TRAINING)
    training = wait_until(lambda: child(c, op, "training"), 20, "the training child")
    c.wait_checkpoint(training["operation_id"], 3, timeout=30)
    assert c.post(f"/operations/{op}/cancel").status_code == 200
    cancelled = c.wait_status(op, "cancelled", timeout=30)
    stopped = c.operation(training["operation_id"])
    assert stopped["status"] == "cancelled", c.logs()
    assert stopped["checkpoint"]["checkpoint_type"] == "cancellation"
    saved = c.get(f"/checkpoints/{op}")["state"]
    assert cancelled["resumable"] and saved["phase"] == "training"
    epoch = saved["training_checkpoint_epoch"]
    assert isinstance(epoch, int) and 3 <= epoch < 40

    assert c.post(f"/operations/{op}/resume").status_code == 200
    done = c.wait_status(op, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", c.logs()
    assert done["attempt"] == 2
    assert outcome(done["result"]) == outcome(expected["result"])
    assert done["result"]["strategy"]["name"] == "model_signal"
    assert done["result"]["metrics"]["total_trades"] > 0  # the model's signals did trade
    resumed = c.operation(training["operation_id"])
    assert resumed["attempt"] == 2 and resumed["status"] == "completed"
    types = [e["event_type"] for e in c.events(training["operation_id"])]
    assert types.count("ResumeRequested") == 1
    first_of_attempt_2 = next(
        e for e in c.events(training["operation_id"]) if e["data"].get("attempt") == 2
    )
    assert first_of_attempt_2["event_type"] == "OperationClaimed"
    history = c.get(f"/checkpoints/{training['operation_id']}/history")["items"]
    assert min(h["state"]["epoch"] for h in history if h["attempt"] == 2) > epoch
    assert len(children(c, op)) == 2


def test_a_backend_killed_during_backtesting_comes_back_and_finishes(c: Cluster) -> None:
    server = c.start_server()
    with_workers(c, "training", "backtesting")
    # A backtest long enough (~4 s) to be running when the backend dies.
    op = c.start("agent_research", seed=8, backtesting=LONG_BACKTEST)
    backtest = wait_until(lambda: child(c, op, "backtesting"), 40, "the backtesting phase")
    assert c.wait_checkpoint(backtest["operation_id"], 1, timeout=20)["status"] == "running"
    assert c.get(f"/checkpoints/{op}")["state"]["phase"] == "backtesting"
    assert "phase backtesting" in listed(c)

    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    c.start_server()
    done = c.wait_status(op, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", c.logs()
    assert done["attempt"] == 1  # never failed, never resumed

    kids = children(c, op)
    assert sorted(k["operation_type"] for k in kids) == ["backtesting", "training"]
    assert all(k["attempt"] == 1 and k["status"] == "completed" for k in kids)
    assert [p for _, p in checkpoint_phases(c, op)] == ["training", "backtesting", "assessing"]
    types = [e["event_type"] for e in c.events(op)]
    assert types.count("OperationClaimed") == 1 and "OperationFailed" not in types


def manager_state(port: int) -> str:
    health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).json()
    return str(health["processors"]["agent_research_manager"])


def test_a_second_replica_takes_over_when_the_active_one_dies(c: Cluster) -> None:
    first_port = free_port()
    first = c.start_server(port=first_port)  # it takes the processors' locks first
    c.start_server()  # the standby, which the workers talk to
    assert (manager_state(first_port), manager_state(c.port)) == ("active", "standby")
    with_workers(c, "training", "backtesting")
    op = c.start("agent_research", **LONG_TRAINING)
    training = wait_until(lambda: child(c, op, "training"), 20, "the training child")
    c.wait_checkpoint(training["operation_id"], 2, timeout=30)

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    done = c.wait_status(op, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", c.logs()
    assert done["attempt"] == 1 and manager_state(c.port) == "active"
    kids = children(c, op)
    assert [(k["operation_type"], k["attempt"]) for k in kids] == [
        ("training", 1),
        ("backtesting", 1),
    ]


def test_a_failed_child_fails_the_research_with_its_reason_and_resumably(c: Cluster) -> None:
    c.start_server()
    with_workers(c, "training", fail_at_epoch=1)
    failed = research(c, {"seed": 4})
    assert failed["status"] == "failed", c.logs()
    training = child(c, failed["operation_id"], "training")
    assert training is not None and training["status"] == "failed"
    assert failed["resumable"] and failed["error"]["reason"] == "error"
    message = failed["error"]["message"]
    assert message.startswith(f"training operation {training['operation_id']} failed (error): ")
    assert training["error"]["message"] in message

    op = failed["operation_id"]
    assert c.post(f"/operations/{op}/resume").status_code == 200
    again = c.wait_status(op, "failed", timeout=30)
    wait_until(lambda: c.operation(op)["attempt"] == 2, 10, "the research's attempt 2")
    assert c.operation(training["operation_id"])["attempt"] == 2  # the child resumed
    assert again["resumable"] and len(children(c, op)) == 1
