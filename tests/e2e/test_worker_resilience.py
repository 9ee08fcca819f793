"""Workers that die, freeze, lose the backend or get SIGTERM — real processes, real PostgreSQL."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrdr.artifacts import ArtifactStore
from tests.e2e.harness import Cluster, cluster, wait_until

COUNTER = {"epochs": 40, "checkpoint_every_epochs": 5}  # the counter: 0.05 s a step


@pytest.fixture
def c(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    yield from cluster(database_url, tmp_path)


def uninterrupted(c: Cluster, worker: str) -> dict[str, object]:
    op = c.start(**COUNTER)
    done = c.wait_status(op, "completed")
    assert done["attempt"] == 1
    return dict(done["result"])


def test_kill_9_then_orphaned_then_resumed_elsewhere(c: Cluster) -> None:
    c.start_server()
    c.start_worker("a")
    expected = uninterrupted(c, "a")

    op = c.start(**COUNTER)
    c.wait_checkpoint(op, 2)
    c.signal("a", signal.SIGKILL)
    killed_at = time.monotonic()
    failed = c.wait_status(op, "failed", timeout=c.orphan_timeout + 10)
    detection = time.monotonic() - killed_at
    print(f"detection latency: {detection:.2f}s (timeout {c.orphan_timeout}s)")
    assert failed["error"]["reason"] == "orphaned" and failed["resumable"]
    assert detection < c.orphan_timeout + 2 + 1  # + 1: our own polling and process start

    resumed = c.post(f"/operations/{op}/resume")
    assert resumed.status_code == 200, resumed.text
    c.start_worker("b")
    done = c.wait_status(op, "completed")
    assert done["attempt"] == 2 and done["worker_id"] == "b"
    assert done["result"] == expected
    types = [e["event_type"] for e in c.events(op)]
    assert types.count("OperationClaimed") == 2 and "ResumeRequested" in types


def events_by(c: Cluster, op: str, actor: str, after_version: int = 0) -> list[str]:
    return [
        e["event_type"]
        for e in c.events(op)
        if e["metadata"].get("actor") == actor and e["stream_version"] > after_version
    ]


def test_frozen_worker_is_fenced_after_another_took_over(c: Cluster) -> None:
    c.start_server()
    c.start_worker("a")
    op = c.start(**{**COUNTER, "epochs": 80})
    c.wait_checkpoint(op, 2)
    c.signal("a", signal.SIGSTOP)
    c.wait_status(op, "failed", timeout=c.orphan_timeout + 10)
    assert c.post(f"/operations/{op}/resume").status_code == 200
    c.start_worker("b")
    c.wait_status(op, "running")
    wait_until(lambda: c.operation(op)["attempt"] == 2, 10, "attempt 2")
    handover = len(c.events(op))

    c.signal("a", signal.SIGCONT)
    done = c.wait_status(op, "completed")
    assert done["worker_id"] == "b" and done["attempt"] == 2
    assert events_by(c, op, "worker:a", after_version=handover) == []
    history = c.get(f"/checkpoints/{op}/history")["items"]
    assert all(h["attempt"] == 2 for h in history if h["sequence"] > 2)
    log = (c.root / "worker-a.log").read_text()
    assert f"abandoning operation {op}" in log
    # A dropped it and is a healthy, available worker again.
    wait_until(lambda: c.worker_status("a") == "available", 10, "worker a to be available")
    refusals = c.get("/health")["fencing"]["stale_attempts_refused"]
    print(
        f"fencing: writes refused by the backend: {refusals}; worker a sent"
        f" {len(events_by(c, op, 'worker:a', handover))} events after the handover"
    )


def test_backend_restart_does_not_fail_the_running_operation(c: Cluster) -> None:
    server = c.start_server()
    c.start_worker("a")
    op = c.start(**{**COUNTER, "epochs": 80})
    c.wait_checkpoint(op, 1)
    registered_before = c.get("/workers")["items"][0]["registered_at"]
    server.send_signal(signal.SIGKILL)
    server.wait()
    time.sleep(1.0)
    c.start_server()
    back_at = time.monotonic()
    wait_until(
        lambda: any(w["registered_at"] != registered_before for w in c.get("/workers")["items"]),
        10,
        "worker a to re-register",
    )
    latency = time.monotonic() - back_at
    print(f"re-registration latency: {latency:.2f}s after the backend answered")
    assert latency < 3
    done = c.wait_status(op, "completed")
    assert done["attempt"] == 1
    types = [e["event_type"] for e in c.events(op)]
    assert "OperationFailed" not in types and types.count("OperationClaimed") == 1


def test_worker_dying_between_claim_and_acknowledgement_gives_the_claim_back(c: Cluster) -> None:
    c.start_server()
    op = c.start(**COUNTER)
    script = (
        "import httpx, os, signal, sys\n"
        "api = sys.argv[1] + '/api/v1'\n"
        "auth = {'Authorization': 'Bearer ' + sys.argv[2]}\n"
        "httpx.post(api + '/workers', json={'worker_id': 'doomed', 'worker_type': 'training',"
        " 'host': 'h', 'pid': os.getpid(), 'version': 't'}, headers=auth).raise_for_status()\n"
        "r = httpx.post(api + '/workers/doomed/claim', json={'wait_seconds': 5}, headers=auth)\n"
        "r.raise_for_status()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    import subprocess
    import sys

    token = c.headers["Authorization"].removeprefix("Bearer ")
    proc = subprocess.run([sys.executable, "-c", script, c.url, token], env=c.env(), timeout=30)
    assert proc.returncode == -signal.SIGKILL
    claimed_at = time.monotonic()
    assert c.operation(op)["worker_id"] == "doomed"
    # It never acknowledged: nothing ran, so nothing failed; the claim goes back.
    back = c.wait_status(op, "pending", timeout=c.orphan_timeout + 10)
    assert back["attempt"] == 1 and back["error"] is None
    assert time.monotonic() - claimed_at < 2 * c.heartbeat_interval + 1
    assert "OperationFailed" not in [e["event_type"] for e in c.events(op)]


def test_sigterm_saves_a_shutdown_checkpoint_and_exits_zero(c: Cluster) -> None:
    c.start_server()
    c.start_worker("a")
    expected = uninterrupted(c, "a")
    op = c.start(**COUNTER)
    c.wait_checkpoint(op, 2)
    c.signal("a", signal.SIGTERM)
    assert c.workers["a"].wait(timeout=25) == 0
    stopped = c.wait_status(op, "cancelled", timeout=10)
    assert stopped["checkpoint"]["checkpoint_type"] == "shutdown" and stopped["resumable"]
    assert c.worker_status("a") == "deregistered"
    types = [e["event_type"] for e in c.events(op)]
    # Retention may delete superseded checkpoints after it; the worker's last word is this.
    assert types.index("OperationCancelled") > max(
        i for i, t in enumerate(types) if t == "CheckpointSaved"
    )

    assert c.post(f"/operations/{op}/resume").status_code == 200
    c.start_worker("b")
    done = c.wait_status(op, "completed")
    assert done["result"] == expected and done["attempt"] == 2


def test_cancel_through_the_api_checkpoints_then_resume_completes(c: Cluster) -> None:
    c.start_server()
    c.start_worker("a")
    expected = uninterrupted(c, "a")
    op = c.start(**COUNTER)
    c.wait_checkpoint(op, 1)
    assert c.post(f"/operations/{op}/cancel").status_code == 200
    cancelled = c.wait_status(op, "cancelled", timeout=10)
    assert cancelled["checkpoint"]["checkpoint_type"] == "cancellation"
    assert c.post(f"/operations/{op}/resume").status_code == 200
    done = c.wait_status(op, "completed")
    assert done["result"] == expected and done["attempt"] == 2
    # The same worker ran the next operation without a stale stop flag.
    later = c.start(**COUNTER)
    assert c.wait_status(later, "completed")["result"] == expected


def test_two_backends_detect_an_orphan_once(c: Cluster) -> None:
    from tests.e2e.harness import free_port

    c.start_server()
    second_port = free_port()
    c.start_server(second_port)
    import httpx

    states = [
        c.get("/health")["processors"]["orphan_detector"],
        httpx.get(f"http://127.0.0.1:{second_port}/api/v1/health").json()["processors"][
            "orphan_detector"
        ],
    ]
    assert sorted(states) == ["active", "standby"]
    c.start_worker("a")
    op = c.start(**{**COUNTER, "epochs": 80})
    c.wait_checkpoint(op, 1)
    c.signal("a", signal.SIGKILL)
    c.wait_status(op, "failed", timeout=c.orphan_timeout + 10)
    time.sleep(2 * c.orphan_timeout)
    types = [e["event_type"] for e in c.events(op)]
    assert types.count("OperationFailed") == 1
    worker_events = c.get("/workers", include_deregistered="true")["items"]
    assert [w["status"] for w in worker_events if w["worker_id"] == "a"] == ["lost"]


def test_disk_use_stays_bounded_over_many_saves(c: Cluster) -> None:
    c.start_server()
    c.start_worker("a", step_seconds=0.03)
    op = c.start(epochs=120, checkpoint_every_epochs=3)  # ~40 checkpoints
    store = ArtifactStore(c.root / "artifacts")
    most = 0
    while c.operation(op)["status"] not in ("completed", "failed"):
        most = max(most, len(store.sets(op)))
        time.sleep(0.05)
    history = c.get(f"/operations/{op}/events")["items"]
    saved = [e for e in history if e["event_type"] == "CheckpointSaved"]
    deleted = [e for e in history if e["event_type"] == "CheckpointDeleted"]
    assert len(saved) >= 30
    keep = 2
    # The newest K, one being committed, and what the retention processor has not yet
    # caught up with: a checkpoint here every ~0.1 s, it looks every 0.1 s.
    assert 0 < most <= keep + 3, most
    assert {e["metadata"]["actor"] for e in deleted} >= {"checkpoint-retention"}
    # Completion deletes the rest (the counter's result names no model to keep).
    wait_until(lambda: store.sets(op) == [], 10, "completion cleanup")


def test_a_corrupted_checkpoint_falls_back_to_the_previous_one(c: Cluster) -> None:
    c.start_server()
    c.start_worker("a")
    expected = uninterrupted(c, "a")
    op = c.start(**COUNTER)
    c.wait_checkpoint(op, 3)
    assert c.post(f"/operations/{op}/cancel").status_code == 200
    cancelled = c.wait_status(op, "cancelled", timeout=10)
    latest = cancelled["checkpoint"]["sequence"]
    damaged = c.root / "artifacts" / op / f"{latest}-a1" / "values.json"
    flipped = bytearray(damaged.read_bytes())
    flipped[1] ^= 0x01  # the same size, another sha256: only a full load can tell
    damaged.write_bytes(bytes(flipped))

    assert c.post(f"/operations/{op}/resume").status_code == 200
    done = c.wait_status(op, "completed")
    assert done["result"] == expected
    messages = [e["data"]["message"] for e in c.events(op) if e["event_type"] == "ProgressReported"]
    assert any(f"instead of {latest}, which is corrupted" in m for m in messages), messages
    log = (c.root / "worker-a.log").read_text()
    assert "CHECKPOINT_CORRUPTED" in log or "corrupt" in log.lower()
