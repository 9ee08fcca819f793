#!/usr/bin/env python3
"""Chaos soak: training and backtesting under SIGKILL, SIGSTOP and a backend crash.

Starts a real `ktrdr serve` and workers (a supervisor restarts a dead worker under its
id, as systemd or Kubernetes would), runs each operation once undisturbed for the
reference result, then runs them again while it SIGKILLs random busy workers,
SIGSTOPs one past the orphan timeout and kills the backend once. Every operation
must complete by itself (retry policies), with the reference's model_sha256 /
trades_sha256 / equity_sha256, every stream gap-free and no event from a superseded
attempt. Prints what it did and what it checked; exits 1 when a check fails.

```
scripts/chaos.py --minutes 10                      # a longer soak, embedded PostgreSQL
scripts/chaos.py --minutes 1 --json                # the report as JSON
scripts/chaos.py --database-url postgresql:///scratch
```
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import psycopg
import typer

KTRDR = [sys.executable, "-m", "ktrdr.cli.app"]
ORPHAN_TIMEOUT = 3.0
HEARTBEAT = 0.5
RETRY_INTERVAL = 0.5
TRAINING = [
    {"epochs": 100, "bars": 1500, "seed": seed, "checkpoint_every_epochs": 5} for seed in (7, 8)
]
BACKTESTING = [{"bars": 600_000, "seed": seed, "checkpoint_every_bars": 40_000} for seed in (5, 6)]
RUNS = len(TRAINING) + len(BACKTESTING)
PINNED = frozenset({"device", "allow_device_change"})
DIGESTS = {"training": ("model_sha256",), "backtesting": ("trades_sha256", "equity_sha256")}
# One spare of each type: a killed worker's operation can run again elsewhere at once.
WORKERS = {
    "training": ("train-1", "train-2", "train-3"),
    "backtesting": ("test-1", "test-2", "test-3"),
}
TERMINAL = {"completed", "failed", "cancelled"}
MIN_UPTIME = 4.0
"""A worker restarted more recently than this is spared: runs must get somewhere."""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Interruption:
    kind: str
    target: str
    operation_id: str | None
    attempt: int | None
    at: float


@dataclass
class Cluster:
    database_url: str
    root: Path
    port: int = field(default_factory=free_port)
    server: subprocess.Popen[bytes] | None = None
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    spawned: dict[str, float] = field(default_factory=dict)
    frozen: set[str] = field(default_factory=set)
    restarts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KTRDR_", "CHECKPOINT_"))}
        return env | {
            "KTRDR_DATABASE_URL": self.database_url,
            "KTRDR_DATA_DIR": str(self.root),
            "CHECKPOINT_ARTIFACTS_PATH": str(self.root / "artifacts"),
            "KTRDR_ORPHAN_TIMEOUT_SECONDS": str(ORPHAN_TIMEOUT),
            "KTRDR_HEARTBEAT_INTERVAL_SECONDS": str(HEARTBEAT),
            "KTRDR_RETRY_MAX_ATTEMPTS": "50",
            "KTRDR_RETRY_INITIAL_INTERVAL_SECONDS": str(RETRY_INTERVAL),
            "KTRDR_RETRY_MAXIMUM_INTERVAL_SECONDS": "2",
            "KTRDR_API_URL": self.url,
        }

    def spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        with open(self.root / f"{log_name}.log", "ab") as log:
            return subprocess.Popen([*KTRDR, *args], env=self.env(), stdout=log, stderr=log)

    def start_server(self) -> None:
        self.server = self.spawn(["serve", "--port", str(self.port)], "server")
        deadline = time.monotonic() + 60
        while not self.healthy():
            if time.monotonic() > deadline or self.server.poll() is not None:
                raise RuntimeError(f"the backend did not start; see {self.root}/server.log")
            time.sleep(0.1)

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self, worker_id: str, kind: str) -> None:
        with self.lock:
            self.kinds[worker_id] = kind
            self.spawned[worker_id] = time.monotonic()
            self.workers[worker_id] = self.spawn(
                ["worker", kind, "--worker-id", worker_id], f"worker-{worker_id}"
            )

    def supervise(self, stop: threading.Event) -> None:
        """Restart a worker that died, under its own id, at once."""
        while not stop.wait(0.2):
            for worker_id, proc in list(self.workers.items()):
                if proc.poll() is not None and worker_id not in self.frozen:
                    self.restarts += 1
                    self.start_worker(worker_id, self.kinds[worker_id])

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                token = (self.root / "admin-token").read_text().strip()
                headers = {"Authorization": f"Bearer {token}"}
                url = f"{self.url}/api/v1{path}"
                response = httpx.request(method, url, timeout=10, headers=headers, **kwargs)
                if response.status_code < 500:
                    response.raise_for_status()
                    return response.json()
            time.sleep(0.2)  # the backend is down (we killed it): wait for it
        raise RuntimeError(f"{method} {path}: the backend does not answer")

    def create(self, operation_type: str, params: dict[str, Any]) -> str:
        body = {"operation_type": operation_type, "params": params}
        return str(self.api("POST", "/operations", json=body)["operation_id"])

    def operation(self, op: str) -> dict[str, Any]:
        result: dict[str, Any] = self.api("GET", f"/operations/{op}")
        return result

    def busy_workers(self) -> list[tuple[str, str, int]]:
        """Workers running an operation, and up long enough to have made some progress."""
        items = self.api("GET", "/workers")["items"]
        settled_in = time.monotonic() - MIN_UPTIME
        return [
            (w["worker_id"], w["current_operation_id"], w["current_attempt"])
            for w in items
            if w["status"] == "busy" and self.spawned.get(w["worker_id"], 0) < settled_in
        ]

    def stop(self) -> None:
        for proc in [*self.workers.values(), *([self.server] if self.server else [])]:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            proc.wait(timeout=30)


SETTLE_SECONDS = 2.0
"""A stop is final once no retry was scheduled for this long (the processor looks 4×/s)."""


def settled(state: dict[str, Any]) -> bool:
    """Ended, as far as one look tells: a failed operation with a retry scheduled has not."""
    return state["status"] in TERMINAL and not state["next_retry_at"]


def wait_all(cluster: Cluster, ops: dict[str, str], timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    calm_since: float | None = None
    while True:
        states = {op: cluster.operation(op) for op in ops}
        if not all(settled(s) for s in states.values()):
            calm_since = None
        elif calm_since is None:
            calm_since = time.monotonic()
        elif time.monotonic() - calm_since >= SETTLE_SECONDS:
            return states
        if time.monotonic() > deadline:
            stuck = {op: s["status"] for op, s in states.items() if not settled(s)}
            raise RuntimeError(f"operations still not finished after {timeout:.0f}s: {stuck}")
        time.sleep(0.25)


def start_all(cluster: Cluster) -> dict[str, str]:
    ops = {cluster.create("training", p): "training" for p in TRAINING}
    ops |= {cluster.create("backtesting", p): "backtesting" for p in BACKTESTING}
    return ops


PLAN = ("kill", "stop", "kill", "backend")
"""The first faults, in order; SIGKILLs of busy workers after them."""


def inject(
    cluster: Cluster, ops: dict[str, str], until: float, plan: list[str], rng: random.Random
) -> list[Interruption]:
    """Until every operation finished (or ``until``), every few seconds: SIGKILL a busy
    worker, or the next fault of ``plan`` (SIGSTOP one past the orphan timeout, kill the
    backend), which it empties as it goes."""
    done: list[Interruption] = []
    while time.monotonic() < until:
        if all(cluster.operation(op)["status"] == "completed" for op in ops):
            break
        time.sleep(rng.uniform(1.5, 3.0))
        busy = cluster.busy_workers()
        if not busy:
            continue
        kind = plan.pop(0) if plan else "kill"
        worker_id, op, attempt = rng.choice(busy)
        if kind == "backend":
            done.append(Interruption("backend killed", "backend", None, None, time.time()))
            say("chaos: SIGKILL the backend, start it again 1 s later")
            assert cluster.server is not None
            cluster.server.kill()
            cluster.server.wait()
            time.sleep(1.0)
            cluster.start_server()
        elif kind == "stop":
            done.append(Interruption("worker frozen", worker_id, op, attempt, time.time()))
            say(f"chaos: SIGSTOP {worker_id} (running {op[:8]}) for {ORPHAN_TIMEOUT + 2:g}s")
            cluster.frozen.add(worker_id)
            cluster.workers[worker_id].send_signal(signal.SIGSTOP)
            time.sleep(ORPHAN_TIMEOUT + 2)
            cluster.workers[worker_id].send_signal(signal.SIGCONT)
            cluster.frozen.discard(worker_id)
        else:
            done.append(Interruption("worker killed", worker_id, op, attempt, time.time()))
            say(f"chaos: SIGKILL {worker_id} (running {op[:8]}, attempt {attempt})")
            cluster.workers[worker_id].kill()
    return done


def events(database_url: str, op: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT stream_version, event_type, data, metadata, recorded_at FROM events"
            " WHERE stream_id = %s ORDER BY stream_version",
            (f"operation-{op}",),
        ).fetchall()
    return [
        {"version": v, "type": t, "data": d, "metadata": m, "recorded_at": r}
        for v, t, d, m, r in rows
    ]


def superseded_writes(stream: list[dict[str, Any]]) -> list[str]:
    """Events written by an attempt after a newer one was claimed."""
    current, stale = 0, []
    for event in stream:
        attempt = event["data"].get("attempt")
        if event["type"] == "OperationClaimed":
            current = attempt
        elif str(event["metadata"].get("actor", "")).startswith("worker:") and attempt is not None:
            if attempt != current:
                stale.append(f"v{event['version']} {event['type']} of attempt {attempt}")
    return stale


def recovery_seconds(database_url: str, hits: list[Interruption]) -> list[float]:
    """From each worker's death to its operation running again on a newer attempt."""
    seconds = []
    for hit in hits:
        if hit.kind != "worker killed" or hit.operation_id is None or hit.attempt is None:
            continue
        later = [
            e["recorded_at"]
            for e in events(database_url, hit.operation_id)
            if e["type"] == "ClaimAcknowledged" and e["data"]["attempt"] > hit.attempt
        ]
        if later:
            seconds.append(min(later).timestamp() - hit.at)
    return seconds


def trajectory_key(params: dict[str, Any]) -> str:
    """The params that decide the result: a resume pins ``device`` (``auto`` becomes the
    device the run was on), which changes nothing on this CPU-only run."""
    return json.dumps({k: v for k, v in params.items() if k not in PINNED}, sort_keys=True)


def check(
    database_url: str,
    ops: dict[str, str],
    finished: dict[str, dict[str, Any]],
    reference: dict[str, dict[str, Any]],
) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {"completed": [], "exact": [], "gap_free": [], "fenced": []}
    for op, kind in ops.items():
        state = finished[op]
        if state["status"] != "completed":
            problems["completed"].append(f"{op}: {state['status']} {state['error']}")
            continue
        expected = reference[trajectory_key(state["params"])]
        for key in DIGESTS[kind]:
            if state["result"][key] != expected[key]:
                problems["exact"].append(f"{op}: {key} differs from the undisturbed run")
        stream = events(database_url, op)
        if [e["version"] for e in stream] != list(range(1, len(stream) + 1)):
            problems["gap_free"].append(f"{op}: stream versions have a gap")
        problems["fenced"] += [f"{op}: {s}" for s in superseded_writes(stream)]
    return problems


@contextlib.contextmanager
def a_database(database_url: str | None, root: Path) -> Iterator[str]:
    if database_url:
        yield database_url
        return
    from ktrdr.bootstrap import database

    with database.throwaway_server("ktrdr-chaos-") as admin_url:
        database.migrate(admin_url)
        yield admin_url


def run(database_url: str, root: Path, minutes: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    cluster = Cluster(database_url, root)
    stop = threading.Event()
    supervisor = threading.Thread(target=cluster.supervise, args=(stop,), daemon=True)
    started = time.monotonic()
    try:
        cluster.start_server()
        for kind, ids in WORKERS.items():
            for worker_id in ids:
                cluster.start_worker(worker_id, kind)
        supervisor.start()
        say("undisturbed runs, for the reference results …")
        baseline = start_all(cluster)
        reference = {
            trajectory_key(s["params"]): s["result"]
            for s in wait_all(cluster, baseline, timeout=300).values()
            if s["status"] == "completed"
        }
        ops: dict[str, str] = {}
        hits: list[Interruption] = []
        problems: dict[str, list[str]] = {}
        until, plan = time.monotonic() + minutes * 60, list(PLAN)
        while not ops or (time.monotonic() < until and not any(problems.values())):
            say(f"round {len(ops) // RUNS + 1}: the same runs again, under chaos …")
            round_ops = start_all(cluster)
            hits += inject(cluster, round_ops, until, plan, rng)
            finished = wait_all(cluster, round_ops, timeout=300)
            ops |= round_ops
            found = check(database_url, round_ops, finished, reference)
            problems = {k: problems.get(k, []) + v for k, v in found.items()}
        recovery = recovery_seconds(database_url, hits)
    finally:
        stop.set()
        cluster.stop()
    retries = sum(
        1 for op in ops for e in events(database_url, op) if e["type"] == "RetryScheduled"
    )
    return {
        "operations": len(ops),
        "interruptions": [
            {"kind": h.kind, "target": h.target, "operation_id": h.operation_id} for h in hits
        ],
        "interruptions_survived": survived(hits, problems),
        "worker_restarts": cluster.restarts,
        "retries_scheduled": retries,
        "recovery_seconds": sorted(round(s, 2) for s in recovery),
        "recovery_target_seconds": ORPHAN_TIMEOUT + RETRY_INTERVAL + 2,
        "problems": problems,
        "seconds": round(time.monotonic() - started, 1),
        "ok": not any(problems.values()) and len(reference) == RUNS,
    }


def survived(hits: list[Interruption], problems: dict[str, list[str]]) -> int:
    """Interruptions after which everything they touched still ended right."""
    if not any(problems.values()):
        return len(hits)
    hurt = {p.split(":")[0] for found in problems.values() for p in found}
    return sum(1 for h in hits if h.operation_id is not None and h.operation_id not in hurt)


def show(report: dict[str, Any]) -> None:
    kinds = [i["kind"] for i in report["interruptions"]]
    say(
        f"\n{report['operations']} operations in {report['seconds']}s,"
        f" {report['interruptions_survived']} of {len(kinds)} interruptions survived"
    )
    for kind in sorted(set(kinds)):
        say(f"  {kinds.count(kind):3d} × {kind}")
    say(f"  {report['worker_restarts']} worker restarts, {report['retries_scheduled']} retries")
    recovery = report["recovery_seconds"]
    if recovery:
        say(
            f"  death → running again: median {statistics.median(recovery):.2f}s,"
            f" max {max(recovery):.2f}s (target {report['recovery_target_seconds']:g}s)"
        )
    for name, found in report["problems"].items():
        say(f"  {'ok  ' if not found else 'FAIL'} {name}" + "".join(f"\n       {p}" for p in found))


def main(
    minutes: Annotated[
        float,
        typer.Option(help="How long to inject faults: rounds of runs start until it is up."),
    ] = 1.0,
    database_url: Annotated[
        str | None,
        typer.Option(help="A migrated, empty database (default: a throwaway embedded one)."),
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option(help="Where logs and artifacts go (default: a temp folder).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the choice of victims and moments.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    root = workdir or Path(tempfile.mkdtemp(prefix="ktrdr-chaos-"))
    root.mkdir(parents=True, exist_ok=True)
    say(f"logs and artifacts in {root}")
    with a_database(database_url, root) as url:
        report = run(url, root, minutes, seed)
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    show(report)
    raise typer.Exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    typer.run(main)
