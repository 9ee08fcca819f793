"""Realistic faults end in a correct state by themselves (issue 10): real processes, real
PostgreSQL, workers that get SIGKILL, SIGSTOP and SIGTERM. Each test is named after
the fault it reproduces; each prints the figure it measured."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ktrdr.artifacts import ArtifactStore, Manifest
from ktrdr.domain import ArtifactFile
from tests.e2e.harness import Cluster, cluster, wait_until
from tests.e2e.reply_dropper import ReplyDropper

COUNTER = {"epochs": 40, "checkpoint_every_epochs": 5}  # the counter: 0.05 s a step


@pytest.fixture
def c(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    # One heartbeat a second: "within two heartbeat intervals" is then measurable.
    yield from cluster(database_url, tmp_path, orphan_timeout=3.0, heartbeat_interval=1.0)


def types(c: Cluster, op: str) -> list[str]:
    return [e["event_type"] for e in c.events(op)]


def recorded(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["recorded_at"])


def first(c: Cluster, op: str, event_type: str, **data: Any) -> dict[str, Any]:
    return next(
        e
        for e in c.events(op)
        if e["event_type"] == event_type and all(e["data"].get(k) == v for k, v in data.items())
    )


def uninterrupted(c: Cluster) -> dict[str, Any]:
    op = c.start(**COUNTER)
    return dict(c.wait_status(op, "completed")["result"])


def test_fault_01_a_claim_handed_to_a_killed_worker_goes_to_the_live_one(c: Cluster) -> None:
    c.start_server()
    dead = c.start_worker("dead")
    c.start_worker("live")
    time.sleep(0.5)  # both long-polling
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    created = time.monotonic()
    op = c.start(**COUNTER)
    wait_until(lambda: c.operation(op)["worker_id"] == "live", 10, "the live worker's claim")
    reached = time.monotonic() - created
    print(f"lost claim reached the live worker {reached:.2f}s after it was created")
    done = c.wait_status(op, "completed")
    assert done["worker_id"] == "live"
    assert "OperationFailed" not in types(c, op)
    assert reached < 2 * c.heartbeat_interval


def test_fault_01_a_claim_never_acknowledged_goes_back_to_the_queue(c: Cluster) -> None:
    c.start_server()
    frozen = c.start_worker("frozen")
    time.sleep(0.3)
    frozen.send_signal(signal.SIGSTOP)  # mid long-poll: the claim lands in a socket never read
    op = c.start(**COUNTER)
    wait_until(lambda: c.operation(op)["attempt"] >= 1, 10, "the frozen worker's claim")
    c.start_worker("live")
    done = c.wait_status(op, "completed")
    frozen.send_signal(signal.SIGKILL)
    claim = first(c, op, "OperationClaimed", worker_id="frozen")
    released = first(c, op, "ClaimReleased", worker_id="frozen")
    back_in = (recorded(released) - recorded(claim)).total_seconds()
    print(f"unacknowledged claim back in the queue after {back_in:.2f}s")
    assert back_in <= 2 * c.heartbeat_interval
    assert released["metadata"]["actor"] == "orphan-detector"
    assert "OperationFailed" not in types(c, op)
    assert done["worker_id"] == "live" and done["status"] == "completed"


def test_fault_02_a_worker_restarted_under_its_id_releases_its_old_attempt(c: Cluster) -> None:
    c.start_server()
    c.start_worker("a")
    expected = uninterrupted(c)
    op = c.start(**COUNTER)
    c.wait_checkpoint(op, 1)
    c.signal("a", signal.SIGKILL)
    killed = time.monotonic()
    c.workers["a"].wait()
    c.start_worker("a")  # what systemd or Kubernetes does: at once, the same id
    failed = c.wait_status(op, "failed", timeout=c.orphan_timeout + 10)
    left = time.monotonic() - killed
    print(f"operation left its dead attempt {left:.2f}s after the kill (same-id restart)")
    assert left < c.orphan_timeout + 2
    assert failed["error"]["reason"] == "orphaned" and failed["resumable"]
    assert "came back without attempt 1" in failed["error"]["message"]
    assert c.post(f"/operations/{op}/resume").status_code == 200
    done = c.wait_status(op, "completed")
    assert done["attempt"] == 2 and done["worker_id"] == "a"
    assert done["result"] == expected


def test_fault_03_a_lost_reply_is_retried_and_gets_the_original_answer(c: Cluster) -> None:
    c.start_server()
    lost: set[str] = set()

    def drop_first(method: str, path: str) -> bool:
        kind = path.rsplit("/", 1)[-1]
        if method == "POST" and kind in ("checkpoints", "complete") and kind not in lost:
            lost.add(kind)
            return True
        return False

    proxy = ReplyDropper(c.port, drop_first).start()
    try:
        c.start_worker("a", env={"KTRDR_API_URL": proxy.url})
        op = c.start(**COUNTER)
        done = c.wait_status(op, "completed")
    finally:
        proxy.stop()
    assert len(proxy.dropped) == 2, proxy.dropped
    assert done["attempt"] == 1 and done["worker_id"] == "a"
    events = types(c, op)
    saved = [e["data"]["sequence"] for e in c.events(op) if e["event_type"] == "CheckpointSaved"]
    assert saved == sorted(set(saved)) and saved[0] == 1  # each committed once
    assert events.count("OperationCompleted") == 1 and "OperationFailed" not in events
    assert "abandoning" not in (c.root / "worker-a.log").read_text()


def test_fault_04_a_zombie_never_writes_into_the_newer_attempts_sets(c: Cluster) -> None:
    c.start_server()
    c.start_worker("a")
    op = c.create(
        {
            "operation_type": "training",
            "params": {**COUNTER, "epochs": 80},
            "keep_checkpoints": True,
        }
    )
    c.wait_checkpoint(op, 2)
    c.signal("a", signal.SIGSTOP)
    c.wait_status(op, "failed", timeout=c.orphan_timeout + 10)
    assert c.post(f"/operations/{op}/resume").status_code == 200
    c.start_worker("b")
    wait_until(lambda: c.operation(op)["attempt"] == 2, 10, "attempt 2")
    c.signal("a", signal.SIGCONT)  # the zombie wakes up in the middle of its run
    c.wait_status(op, "completed")
    store = ArtifactStore(c.root / "artifacts")
    history = c.get(f"/checkpoints/{op}/history")["items"]
    assert history
    for checkpoint in history:
        manifest = Manifest(files=tuple(ArtifactFile(**a) for a in checkpoint["artifacts"]))
        store.load_set(checkpoint["artifacts_path"], manifest)  # sha256 verified: untouched
        assert checkpoint["artifacts_path"].endswith(f"-a{checkpoint['attempt']}")
        assert checkpoint["resumable"] is True


def test_fault_08_a_worker_adopts_the_backends_timing(c: Cluster) -> None:
    c.start_server()
    # The worker's own settings would heartbeat every 10 s against a 3 s timeout.
    c.start_worker(
        "a",
        env={"KTRDR_ORPHAN_TIMEOUT_SECONDS": "60", "KTRDR_HEARTBEAT_INTERVAL_SECONDS": "10"},
        step_seconds=0.1,
    )
    op = c.start(epochs=60, checkpoint_every_epochs=100)  # 6 s, no checkpoint
    done = c.wait_status(op, {"completed", "failed"}, timeout=30)
    assert done["status"] == "completed", done["error"]
    assert "heartbeat every 1.0s, as the backend asks" in (c.root / "worker-a.log").read_text()


def test_fault_10_a_sigtermed_worker_claims_nothing(c: Cluster) -> None:
    c.start_server()
    leaving = c.start_worker("leaving")
    time.sleep(0.3)  # long-polling
    leaving.send_signal(signal.SIGTERM)
    op = c.start(**COUNTER)  # lands in the long-poll the SIGTERM interrupted
    assert leaving.wait(timeout=25) == 0
    claims = [e for e in c.events(op) if e["event_type"] == "OperationClaimed"]
    if claims:  # the claim did arrive: it went back to the queue, untouched
        released = first(c, op, "ClaimReleased", worker_id="leaving")
        assert released["metadata"]["actor"] == "worker:leaving"
        assert "shutting down" in released["data"]["reason"]
    assert c.operation(op)["status"] == "pending"
    c.start_worker("staying")
    done = c.wait_status(op, "completed")
    assert done["worker_id"] == "staying"
    assert not {"OperationCancelled", "OperationFailed"} & set(types(c, op))


def test_fault_13_a_dead_idle_worker_gets_an_event_and_shows_as_lost(c: Cluster) -> None:
    c.start_server()
    c.start_worker("idle")
    c.signal("idle", signal.SIGKILL)
    killed = time.monotonic()
    missed = wait_until(
        lambda: worker_events(c.database_url, "idle", "HeartbeatMissed"),
        c.orphan_timeout + 5,
        "the missed heartbeat",
    )
    print(f"idle worker recorded lost {time.monotonic() - killed:.2f}s after its death")
    assert missed[0]["actor"] == "orphan-detector"
    assert c.worker_status("idle") == "lost"


def worker_events(database_url: str, worker_id: str, event_type: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT metadata FROM events WHERE stream_id = %s AND event_type = %s",
            (f"worker-{worker_id}", event_type),
        ).fetchall()
    return [row[0] for row in rows]
