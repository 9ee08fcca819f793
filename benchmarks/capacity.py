"""One backend for hundreds of workers: heartbeat capacity of `ktrdr serve`, 1 and 2 replicas.

    .venv/bin/python benchmarks/capacity.py [--workers 500] [--seconds 30] [--warm-up 5]
                                            [--quick] [--database-url URL]

A real ``ktrdr serve`` process (heartbeat interval 1 s, orphan timeout 5 s) and a
real ``ktrdr worker training`` process training all along (operations of epochs=200,
bars=1500, one always queued behind the running one) on one database. N simulated
workers register, then each heartbeats once a second on a keep-alive connection of its
own, at a phase of its own, as a worker process does; after a warm-up the heartbeats
are timed for ``--seconds``. Then the same with a second ``ktrdr serve`` replica on
the same database, half the workers on each, measured in the same run.

Per case it prints heartbeats per second against the offered rate, latency
percentiles (send to last byte of the answer), errors (non-2xx, broken connections,
answers slower than 10 s), false orphans (``HeartbeatMissed`` of a worker that was
heartbeating, ``OperationFailed``/orphaned of a training operation: read from the
event log), the training epochs run meanwhile, and the CPU, in cores, of each server,
of the database's backends, of the training worker, of the load generator, of the
whole machine and of the rest of it (other work, PostgreSQL's own processes). How late
the load generator's event loop ran says how much of the latency is its own.

The load generator is a minimal HTTP/1.1 keep-alive client on uvloop (prebuilt
request bytes; status line, headers, Content-Length body), cheap enough not to be the
bottleneck. The offered rate caps throughput, so with both cases keeping up the
scaling shows in the p99 ratio.

Without ``--database-url`` (or KTRDR_BENCH_DATABASE_URL) an embedded PostgreSQL is
started in a temporary directory and removed afterwards; with one, a scratch database
is created on it, migrated and dropped (127.0.0.1, ::1 or unix sockets only).

Target: 500 workers on 1 replica, p99 <= 250 ms, no error, no false orphan. Each
``ratio`` line divides a figure by its baseline's, both measured in this run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, LiteralString

import psutil  # type: ignore[import-untyped]
import psycopg

from ktrdr.bootstrap import database
from ktrdr.config import normalize_database_url, redact

URL_ENV = "KTRDR_BENCH_DATABASE_URL"
KTRDR = [sys.executable, "-m", "ktrdr.cli.app"]
HEARTBEAT_SECONDS = 1.0
ORPHAN_TIMEOUT_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 10.0
START_TIMEOUT_SECONDS = 90.0
REGISTER_CONCURRENCY = 10
REGISTER_TRIES = 5
TARGET_P99_MS = 250.0
TARGET_WORKERS = 500
TRAINING_PARAMS = {"epochs": 200, "bars": 1500}
TRAINER_ID = "capacity-trainer"
KEEPER_SECONDS = 1.0
LAG_TICK_SECONDS = 0.01
REST = "rest of the machine"
"""Other work on it, and PostgreSQL's own processes (WAL writer, checkpointer…)."""
TERMINAL = {"completed", "failed", "cancelled"}

# -- SQL ----------------------------------------------------------------------------------

SERVER_VERSION: LiteralString = "SHOW server_version"
BACKENDS: LiteralString = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
# Every worker of a case heartbeats until it deregisters, and the training worker throughout:
# any of these is a false verdict.
FALSE_ORPHANS: LiteralString = """
SELECT count(*) FILTER (WHERE event_type = 'HeartbeatMissed'
                          AND (stream_id LIKE %(workers)s OR stream_id = %(trainer)s)),
       count(*) FILTER (WHERE event_type = 'OperationFailed' AND data->>'reason' = 'orphaned')
FROM events WHERE recorded_at >= %(since)s
"""
DATABASE_NOW: LiteralString = "SELECT now()"


def now() -> float:
    """The benchmark's clock: uvloop's own (loop.time) counts whole milliseconds."""
    return time.perf_counter()


def out(text: str = "") -> None:
    print(text, flush=True)


# -- A minimal HTTP/1.1 keep-alive client ---------------------------------------------------


class HttpError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ClosedByServer(HttpError):
    """The server closed the connection before answering (an idle keep-alive one, say)."""


TOKEN: list[str] = [os.environ["KTRDR_API_TOKEN"]] if os.environ.get("KTRDR_API_TOKEN") else []
"""The bearer token every request carries: KTRDR_API_TOKEN, else the one the first
server wrote into its data dir."""


class Connection:
    """One keep-alive connection; requests are prebuilt bytes, answers (status, body)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def request(self, method: str, path: str, body: Any = None) -> bytes:
        payload = b"" if body is None else json.dumps(body).encode()
        auth = f"Authorization: Bearer {TOKEN[0]}\r\n" if TOKEN else ""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        return head.encode() + payload

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                return await self._exchange(raw)
        except BaseException:
            self.close()  # a half-read answer would poison the next one
            raise

    async def _exchange(self, raw: bytes) -> tuple[int, bytes]:
        reused = self._streams is not None
        try:
            return await self._once(raw)
        except (ClosedByServer, ConnectionResetError):
            if not reused:
                raise
        # As HTTP clients do: a kept-alive connection the server dropped is opened again.
        self.close()
        return await self._once(raw)

    async def _once(self, raw: bytes) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        writer.write(raw)
        status_line = await reader.readline()
        if not status_line:
            raise ClosedByServer("connection closed by the server")
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length) if length else b""
        return int(status_line.split(b" ", 2)[1]), body

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def call(conn: Connection, method: str, path: str, body: Any = None) -> Any:
    status, answer = await conn.send(conn.request(method, path, body))
    if status >= 300:
        raise HttpError(f"{method} {path}: HTTP {status} {answer[:200]!r}", status)
    return json.loads(answer) if answer else None


# -- Simulated workers ----------------------------------------------------------------------


@dataclass
class Tally:
    """What the heartbeats inside the measured window got."""

    start: float = math.inf
    end: float = math.inf
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def record(self, sent_at: float, done_at: float, error: str | None) -> None:
        if not self.start <= sent_at < self.end:
            return
        if error is None:
            self.latencies.append(done_at - sent_at)
        else:
            self.errors[error] += 1


class SimulatedWorker:
    def __init__(self, worker_id: str, host: str, port: int) -> None:
        self.worker_id = worker_id
        self.conn = Connection(host, port)
        self.registered = asyncio.Event()
        self._beat = self.conn.request(
            "POST",
            f"/api/v1/workers/{worker_id}/heartbeat",
            {"operation_id": None, "attempt": None},
        )

    async def register(self) -> None:
        body = {
            "worker_id": self.worker_id,
            "worker_type": "backtesting",
            "host": "capacity-bench",
            "pid": os.getpid(),
            "version": "bench",
        }
        for retry in range(REGISTER_TRIES):
            try:
                await call(self.conn, "POST", "/api/v1/workers", body)
                return
            except (OSError, HttpError) as exc:
                # As a worker does, it tries again when the backend is busy or unreachable.
                refused = isinstance(exc, HttpError) and (exc.status or 500) < 500
                if refused or retry == REGISTER_TRIES - 1:
                    raise
                await asyncio.sleep(0.5)

    async def live(self, gate: asyncio.Semaphore, phase: float, tally: Tally) -> None:
        """Register, then heartbeat once a second at its phase until the window ends (a
        late answer delays the next beat, as in a worker's heartbeat thread)."""
        async with gate:
            await self.register()
        self.registered.set()
        due = phase + HEARTBEAT_SECONDS * math.ceil(max(0.0, now() - phase) / HEARTBEAT_SECONDS)
        while due < tally.end:
            await asyncio.sleep(max(0.0, due - now()))
            sent_at = now()
            error = await self._beat_once()
            tally.record(sent_at, now(), error)
            due = max(due + HEARTBEAT_SECONDS, now())

    async def _beat_once(self) -> str | None:
        try:
            status, _ = await self.conn.send(self._beat)
        except TimeoutError:
            return "timeout"
        except (OSError, HttpError, asyncio.IncompleteReadError) as exc:
            return type(exc).__name__
        return None if status == 200 else f"HTTP {status}"

    async def deregister(self) -> None:
        await call(self.conn, "DELETE", f"/api/v1/workers/{self.worker_id}?reason=bench")
        self.conn.close()


async def limited(coroutines: Sequence[Any], limit: int) -> None:
    gate = asyncio.Semaphore(limit)

    async def run(coroutine: Any) -> None:
        async with gate:
            await coroutine

    await asyncio.gather(*(run(c) for c in coroutines))


# -- Processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """``ktrdr serve`` replicas and a training worker on one database, logs under ``root``."""

    database_url: str
    root: Path
    servers: list[tuple[int, subprocess.Popen[bytes]]] = field(default_factory=list)
    trainer: subprocess.Popen[bytes] | None = None

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KTRDR_", "CHECKPOINT_"))}
        env.update(
            KTRDR_DATABASE_URL=self.database_url,
            KTRDR_DATA_DIR=str(self.root),
            CHECKPOINT_ARTIFACTS_PATH=str(self.root / "artifacts"),
            KTRDR_HEARTBEAT_INTERVAL_SECONDS=str(HEARTBEAT_SECONDS),
            KTRDR_ORPHAN_TIMEOUT_SECONDS=str(ORPHAN_TIMEOUT_SECONDS),
            **extra,
        )
        return env

    def _spawn(self, args: list[str], name: str, **env: str) -> subprocess.Popen[bytes]:
        with open(self.root / f"{name}.log", "ab") as log:
            return subprocess.Popen(args, env=self.env(**env), stdout=log, stderr=log)

    async def start_server(self) -> int:
        port = free_port()
        proc = self._spawn([*KTRDR, "serve", "--port", str(port)], f"server-{port}")
        self.servers.append((port, proc))
        await self._until_healthy(port, proc)
        if not TOKEN:
            TOKEN.append((self.root / "admin-token").read_text().strip())
        return port

    async def _until_healthy(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        conn = Connection("127.0.0.1", port)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError, HttpError, TimeoutError):
                if (await call(conn, "GET", "/api/v1/health"))["status"] == "ok":
                    conn.close()
                    return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"ktrdr serve on port {port} never became healthy; see {self.root}")

    def start_trainer(self, port: int, worker_id: str) -> None:
        args = [*KTRDR, "worker", "training", "--worker-id", worker_id]
        self.trainer = self._spawn(args, "trainer", KTRDR_API_URL=f"http://127.0.0.1:{port}")

    def stop(self) -> None:
        procs = [p for p in [self.trainer, *(p for _, p in self.servers)] if p is not None]
        for proc in procs:  # the trainer first: it saves a shutdown checkpoint
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


class Training:
    """Keeps one training operation running on the training worker, and counts its epochs."""

    def __init__(self, port: int) -> None:
        self._conn = Connection("127.0.0.1", port)
        self._turn = asyncio.Lock()  # the keeper and the measurement share the connection
        self.operations: list[str] = []

    async def start(self) -> None:
        body = {"operation_type": "training", "params": TRAINING_PARAMS}
        async with self._turn:
            created = await call(self._conn, "POST", "/api/v1/operations", body)
        self.operations.append(created["operation_id"])

    async def keep_running(self, stop: asyncio.Event) -> None:
        """One more always waits in the queue: the worker claims it as soon as it is free."""
        while not stop.is_set():
            unfinished = [o for o in self.operations[-2:] if await self._unfinished(o)]
            for _ in range(2 - len(unfinished)):
                await self.start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), KEEPER_SECONDS)

    async def epochs(self) -> float:
        """Epochs trained so far, over every operation started (from their progress)."""
        done = 0.0
        for operation_id in self.operations:
            progress = (await self._get(operation_id))["progress"]
            done += float(progress["percentage"] or 0.0) / 100 * int(TRAINING_PARAMS["epochs"])
        return done

    async def wait_running(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while (await self._get(self.operations[-1]))["status"] != "running":
            if time.monotonic() > deadline:
                raise RuntimeError("the training operation never started")
            await asyncio.sleep(0.2)

    async def _unfinished(self, operation_id: str) -> bool:
        return (await self._get(operation_id))["status"] not in TERMINAL

    async def _get(self, operation_id: str) -> dict[str, Any]:
        async with self._turn:
            found: dict[str, Any] = await call(
                self._conn, "GET", f"/api/v1/operations/{operation_id}"
            )
        return found


# -- CPU ------------------------------------------------------------------------------------


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def machine_busy_seconds() -> float:
    times = psutil.cpu_times()._asdict()
    # Guest time is counted in user and nice already.
    not_busy = ("idle", "iowait", "steal", "guest", "guest_nice")
    return float(sum(seconds for name, seconds in times.items() if name not in not_busy))


@dataclass
class CpuWatch:
    """CPU seconds of process groups between ``begin`` and ``end``, in cores."""

    groups: dict[str, list[int]]
    before: dict[str, float] = field(default_factory=dict)
    cores: dict[str, float] = field(default_factory=dict)
    started: float = 0.0

    def begin(self) -> None:
        self.started = time.monotonic()
        self.before = {name: self._now(name) for name in self.groups}

    def end(self) -> None:
        elapsed = time.monotonic() - self.started
        self.cores = {n: (self._now(n) - self.before[n]) / elapsed for n in self.groups}
        ours = sum(cores for name, cores in self.cores.items() if name != "machine")
        # Per-process and machine-wide accounting differ by a few ticks: never below zero.
        self.cores[REST] = max(0.0, self.cores["machine"] - ours)

    def _now(self, name: str) -> float:
        if name == "machine":
            return machine_busy_seconds()
        if name == "load generator":
            return time.process_time()
        return cpu_seconds(self.groups[name])


class LoopLag:
    """How late the load generator's event loop runs what is due: latency it adds itself."""

    def __init__(self) -> None:
        self.lags: list[float] = []

    async def watch(self, until: float) -> None:
        while (due := now() + LAG_TICK_SECONDS) < until:
            await asyncio.sleep(LAG_TICK_SECONDS)
            self.lags.append(now() - due)

    def p99_ms(self) -> float:
        ordered = sorted(self.lags)
        return 1000 * ordered[int(0.99 * (len(ordered) - 1))] if ordered else float("nan")


# -- Cases ----------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    workers: int
    seconds: float
    tally: Tally
    cpu: dict[str, float]
    false_missed: int
    false_orphaned: int
    epochs: float
    lag_p99_ms: float

    @property
    def rate(self) -> float:
        return len(self.tally.latencies) / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.tally.latencies)
        if not ordered:
            return float("nan")
        return 1000 * ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def errors(self) -> int:
        return sum(self.tally.errors.values())

    @property
    def false_orphans(self) -> int:
        return self.false_missed + self.false_orphaned


@dataclass(frozen=True)
class Case:
    name: str
    prefix: str
    ports: tuple[int, ...]
    workers: int
    warm_up: float
    seconds: float


@dataclass
class Bench:
    cluster: Cluster
    training: Training
    trainer_id: str

    def cpu_groups(self, ports: Sequence[int]) -> dict[str, list[int]]:
        servers = {f"server :{p}": [proc.pid] for p, proc in self.cluster.servers if p in ports}
        trainer = [self.cluster.trainer.pid] if self.cluster.trainer else []
        with psycopg.connect(self.cluster.database_url) as conn:
            backends = [int(r[0]) for r in conn.execute(BACKENDS).fetchall()]
        return {
            **servers,
            "postgres backends": backends,
            "training worker": trainer,
            "load generator": [],
            "machine": [],
        }

    def database_now(self) -> Any:
        with psycopg.connect(self.cluster.database_url) as conn:
            row = conn.execute(DATABASE_NOW).fetchone()
        assert row is not None
        return row[0]

    def false_orphans(self, prefix: str, since: Any) -> tuple[int, int]:
        params = {"workers": f"worker-{prefix}-%", "trainer": f"worker-{self.trainer_id}"}
        with psycopg.connect(self.cluster.database_url) as conn:
            row = conn.execute(FALSE_ORPHANS, {**params, "since": since}).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


async def run_case(bench: Bench, case: Case) -> Result:
    workers = [
        SimulatedWorker(f"{case.prefix}-{i:04d}", "127.0.0.1", case.ports[i % len(case.ports)])
        for i in range(case.workers)
    ]
    since = await asyncio.to_thread(bench.database_now)
    gate, tally, base = asyncio.Semaphore(REGISTER_CONCURRENCY), Tally(), now()
    lives = [
        asyncio.create_task(w.live(gate, base + i * HEARTBEAT_SECONDS / len(workers), tally))
        for i, w in enumerate(workers)
    ]
    await _all_registered(workers, lives)
    tally.start = now() + case.warm_up
    tally.end = tally.start + case.seconds
    watch = CpuWatch(await asyncio.to_thread(bench.cpu_groups, case.ports))
    await asyncio.sleep(case.warm_up)
    watch.begin()
    lag = LoopLag()
    lagging = asyncio.create_task(lag.watch(tally.end))
    epochs_before = await bench.training.epochs()
    await asyncio.sleep(max(0.0, tally.end - now()))
    watch.end()
    await lagging
    epochs = await bench.training.epochs() - epochs_before
    await asyncio.gather(*lives)
    await limited([w.deregister() for w in workers], REGISTER_CONCURRENCY)
    missed, orphaned = await asyncio.to_thread(bench.false_orphans, case.prefix, since)
    return Result(
        case.name,
        case.workers,
        case.seconds,
        tally,
        watch.cores,
        missed,
        orphaned,
        epochs,
        lag.p99_ms(),
    )


async def _all_registered(
    workers: Sequence[SimulatedWorker], lives: list[asyncio.Task[None]]
) -> None:
    registered = asyncio.gather(*(w.registered.wait() for w in workers))
    waits: list[asyncio.Future[Any]] = [registered, *lives]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    failed = [life for life in lives if life.done() and life.exception()]
    if failed:  # a registration failed: nothing below would mean anything
        for life in lives:
            life.cancel()
        failed[0].result()


# -- Report ---------------------------------------------------------------------------------

HEADER = (
    f"  {'case':<12} {'workers':>7} {'beats/s':>8} {'offered':>8} {'p50 ms':>7} {'p95 ms':>7}"
    f" {'p99 ms':>7} {'max ms':>7} {'errors':>6} {'false orphans':>13} {'epochs':>6}"
)


def result_lines(r: Result) -> list[str]:
    offered = r.workers / HEARTBEAT_SECONDS
    lines = [
        f"  {r.name:<12} {r.workers:>7} {r.rate:>8.1f} {offered:>8.1f} {r.percentile(50):>7.1f}"
        f" {r.percentile(95):>7.1f} {r.percentile(99):>7.1f} {r.percentile(100):>7.1f}"
        f" {r.errors:>6} {r.false_orphans:>13} {r.epochs:>6.1f}"
    ]
    cpu = ", ".join(f"{name} {cores:.2f}" for name, cores in r.cpu.items())
    lines.append(f"  {'':<12} CPU in cores: {cpu}")
    lines.append(f"  {'':<12} load generator's event loop late by {r.lag_p99_ms:.1f} ms at p99")
    if r.errors:
        lines.append(f"  {'':<12} errors: {dict(r.tally.errors)}")
    if r.false_orphans:
        lines.append(
            f"  {'':<12} false orphans: {r.false_missed} HeartbeatMissed,"
            f" {r.false_orphaned} OperationFailed/orphaned"
        )
    return lines


@dataclass(frozen=True)
class Ratio:
    label: str
    value: float
    target: float | None = None
    at_most: bool = False

    def line(self) -> str:
        if self.target is None:
            verdict = "(information)"
        else:
            met = self.value <= self.target if self.at_most else self.value >= self.target
            sign = "<=" if self.at_most else ">="
            verdict = f"target {sign} {self.target:g}  {'met' if met else 'NOT MET'}"
        return f"ratio  {self.label:<52} {self.value:>7.2f}   {verdict}"


def ratios(one: Result, two: Result) -> list[Ratio]:
    offered = one.workers / HEARTBEAT_SECONDS
    return [
        Ratio("heartbeats/s : offered, 1 replica", one.rate / offered, 0.99),
        Ratio("heartbeats/s : offered, 2 replicas", two.rate / offered, 0.99),
        Ratio("heartbeats/s, 2 replicas : 1 replica", two.rate / one.rate),
        Ratio("p99, 2 replicas : 1 replica", two.percentile(99) / one.percentile(99)),
        Ratio(
            "p99 ms, 1 replica : the target's 250 ms", one.percentile(99) / TARGET_P99_MS, 1.0, True
        ),
    ]


def verdict(one: Result) -> str:
    met = (
        one.workers >= TARGET_WORKERS
        and one.percentile(99) <= TARGET_P99_MS
        and one.errors == 0
        and one.false_orphans == 0
    )
    return (
        f"target  {TARGET_WORKERS} workers on 1 replica, p99 <= {TARGET_P99_MS:g} ms, no error,"
        f" no false orphan: {'met' if met else 'NOT MET'}"
    )


# -- The run --------------------------------------------------------------------------------


async def run_benchmark(url: str, root: Path, workers: int, warm_up: float, seconds: float) -> None:
    cluster = Cluster(url, root)
    try:
        first = await cluster.start_server()
        cluster.start_trainer(first, TRAINER_ID)
        training = Training(first)
        await training.start()
        await training.wait_running()
        stop = asyncio.Event()
        keeper = asyncio.create_task(training.keep_running(stop))
        bench = Bench(cluster, training, TRAINER_ID)
        out(HEADER)
        one = await run_case(bench, Case("1 replica", "cap1", (first,), workers, warm_up, seconds))
        for line in result_lines(one):
            out(line)
        second = await cluster.start_server()
        two = await run_case(
            bench, Case("2 replicas", "cap2", (first, second), workers, warm_up, seconds)
        )
        for line in result_lines(two):
            out(line)
        stop.set()
        await keeper
        out()
        for r in ratios(one, two):
            out(r.line())
        out(verdict(one))
    finally:
        await asyncio.to_thread(cluster.stop)


# -- Databases ------------------------------------------------------------------------------


def scratch_database(admin_url: str) -> contextlib.AbstractContextManager[str]:
    """A migrated database of this run's own, dropped at the end whatever happens."""
    return database.scratch_database(admin_url, "ktrdr_capacity")


@contextlib.contextmanager
def server(database_url: str | None, root: Path) -> Iterator[str]:
    if database_url is not None:
        url = normalize_database_url(database_url)
        database.check_local(url)
        yield url
        return
    with database.throwaway_server("ktrdr-capacity-") as url:
        yield url


def print_header(url: str, workers: int, warm_up: float, seconds: float) -> None:
    with psycopg.connect(url) as conn:
        row = conn.execute(SERVER_VERSION).fetchone()
    out(f"ktrdr capacity benchmark — PostgreSQL {row[0] if row else '?'} at {redact(url)}")
    out(
        f"{workers} simulated workers, a heartbeat every {HEARTBEAT_SECONDS:g} s each"
        f" (orphan timeout {ORPHAN_TIMEOUT_SECONDS:g} s); {seconds:g} s measured after"
        f" {warm_up:g} s of warm-up; one training operation {TRAINING_PARAMS} running on a"
        f" ktrdr worker; {os.cpu_count()} CPU cores"
    )
    out()


def run_on_uvloop(main: Coroutine[Any, Any, None]) -> None:
    """On uvloop where it installs (as under ktrdr serve): the load generator stays cheap."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="heartbeat capacity of ktrdr serve")
    parser.add_argument("--workers", type=int, default=TARGET_WORKERS)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured, per case")
    parser.add_argument("--warm-up", type=float, default=5.0, help="seconds, per case")
    parser.add_argument("--quick", action="store_true", help="100 workers, 10 s per case")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(URL_ENV) or None,
        help=f"a server to use instead of an embedded one (also {URL_ENV});"
        " a scratch database is created on it and dropped",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workers, seconds = (100, 10.0) if args.quick else (args.workers, args.seconds)
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="ktrdr-capacity-") as tmp,
        server(args.database_url, Path(tmp)) as admin_url,
        scratch_database(admin_url) as url,
    ):
        print_header(url, workers, args.warm_up, seconds)
        run_on_uvloop(run_benchmark(url, Path(tmp), workers, args.warm_up, seconds))
    out(f"\ndone in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
