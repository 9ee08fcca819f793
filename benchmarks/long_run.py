"""A long training run costs the same per epoch at its end as at its start.

    .venv/bin/python -m benchmarks.long_run [--epochs 5000] [--database-url URL]

A real `ktrdr serve` and a real `ktrdr worker training` run one tiny-model training
of ``--epochs`` epochs (one batch each) with a checkpoint every 10 epochs, on a
scratch database (an embedded PostgreSQL unless ``--database-url``). From the event
log and the database it measures:

- the epoch rate over the last tenth of the run against the rate over the first
  tenth (checkpoint times, in the log's own clock); target ≥ 0.9;
- the size of the last CheckpointSaved against the first; target ≤ 1.5;
- the operation's row in the read model at the end; target ≤ 16 KB;
- the database's growth (its files, without WAL) per 1,000 epochs, and per event.

Both rates are measured in the same run, on the same machine, so the ratio holds
however busy the machine is; the absolute figures drift with it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString

import httpx
import psycopg

from benchmarks.eventlog import scratch_database, server

KTRDR = [sys.executable, "-m", "ktrdr.cli.app"]
CHECKPOINT_EVERY = 10
TIMEOUT_SECONDS = 1800.0
TARGETS = {"rate": 0.9, "checkpoint": 1.5, "row": 16 * 1024}

_CHECKPOINTS: LiteralString = """
SELECT (data->'state'->>'epoch')::int, extract(epoch FROM recorded_at), octet_length(data::text)
FROM events WHERE stream_id = %(stream)s AND event_type = 'CheckpointSaved'
ORDER BY stream_version
"""
_ROW: LiteralString = "SELECT pg_column_size(o.*) FROM operations o WHERE operation_id = %(id)s"
_DATABASE_SIZE: LiteralString = "SELECT pg_database_size(current_database())"
_EVENTS: LiteralString = "SELECT count(*) FROM events WHERE stream_id = %(stream)s"


def out(text: str = "") -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Processes:
    database_url: str
    root: Path
    port: int

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KTRDR_", "CHECKPOINT_"))}
        return env | {
            "KTRDR_DATABASE_URL": self.database_url,
            "KTRDR_DATA_DIR": str(self.root),
            "CHECKPOINT_ARTIFACTS_PATH": str(self.root / "artifacts"),
            "KTRDR_API_URL": f"http://127.0.0.1:{self.port}",
        }

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        with open(self.root / "server.log", "ab") as log:
            serve = subprocess.Popen(
                [*KTRDR, "serve", "--port", str(self.port)], env=self.env(), stdout=log, stderr=log
            )
        try:
            wait(lambda: self.healthy(), 60, "the backend to answer")
            with open(self.root / "worker.log", "ab") as log:
                worker = subprocess.Popen(
                    [*KTRDR, "worker", "training", "--worker-id", "bench"],
                    env=self.env(),
                    stdout=log,
                    stderr=log,
                )
            try:
                yield
            finally:
                worker.kill()
                worker.wait()
        finally:
            serve.terminate()
            serve.wait(timeout=30)

    def healthy(self) -> bool:
        try:
            return self.get("/health").get("status") == "ok"
        except (httpx.HTTPError, ValueError):
            return False

    def get(self, path: str) -> Any:
        return httpx.get(
            f"http://127.0.0.1:{self.port}/api/v1{path}", timeout=10, headers=self.headers()
        ).json()

    def headers(self) -> dict[str, str]:
        token_file = self.root / "admin-token"
        if not token_file.exists():  # before the server's first start: health needs none
            return {}
        return {"Authorization": f"Bearer {token_file.read_text().strip()}"}

    def start(self, epochs: int) -> str:
        params = {
            "epochs": epochs,
            "bars": 200,
            "hidden_size": 4,
            "batch_size": 1024,
            "checkpoint_every_epochs": CHECKPOINT_EVERY,
            "seed": 1,
        }
        body = {"operation_type": "training", "params": params, "retry_policy": {"max_attempts": 1}}
        response = httpx.post(
            f"http://127.0.0.1:{self.port}/api/v1/operations",
            json=body,
            timeout=10,
            headers=self.headers(),
        )
        response.raise_for_status()
        return str(response.json()["operation_id"])


def wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)
    return value


def rate(checkpoints: list[tuple[int, float, int]], first: int, last: int) -> float:
    """Epochs per second between the checkpoints nearest ``first`` and ``last``."""
    start = min(checkpoints, key=lambda c: abs(c[0] - first))
    end = min(checkpoints, key=lambda c: abs(c[0] - last))
    return (end[0] - start[0]) / (end[1] - start[1])


def measure(url: str, root: Path, epochs: int) -> dict[str, float]:
    processes = Processes(url, root, free_port())
    with psycopg.connect(url) as conn, processes.running():
        before = conn.execute(_DATABASE_SIZE).fetchone()[0]  # type: ignore[index]
        op = processes.start(epochs)
        started = time.monotonic()
        done = wait(
            lambda: (
                (o := processes.get(f"/operations/{op}"))["status"] in ("completed", "failed") and o
            ),
            TIMEOUT_SECONDS,
            f"{epochs} epochs",
        )
        if done["status"] != "completed":
            raise RuntimeError(f"the run failed: {done['error']}; see {root}")
        seconds = time.monotonic() - started
        stream = {"stream": f"operation-{op}", "id": op}
        checkpoints = [tuple(r) for r in conn.execute(_CHECKPOINTS, stream).fetchall()]
        row = conn.execute(_ROW, stream).fetchone()[0]  # type: ignore[index]
        events = conn.execute(_EVENTS, stream).fetchone()[0]  # type: ignore[index]
        conn.execute("CHECKPOINT")  # the table files, flushed: growth without WAL
        after = conn.execute(_DATABASE_SIZE).fetchone()[0]  # type: ignore[index]
    tenth = epochs // 10
    first_rate = rate(checkpoints, 0, tenth)  # type: ignore[arg-type]
    last_rate = rate(checkpoints, epochs - tenth, epochs)  # type: ignore[arg-type]
    return {
        "seconds": seconds,
        "first_rate": first_rate,
        "last_rate": last_rate,
        "first_checkpoint": float(checkpoints[0][2]),  # type: ignore[arg-type]
        "last_checkpoint": float(checkpoints[-1][2]),  # type: ignore[arg-type]
        "row": float(row),
        "events": float(events),
        "growth": float(after - before),
    }


def report(epochs: int, f: dict[str, float]) -> bool:
    ratios = {
        "rate": f["last_rate"] / f["first_rate"],
        "checkpoint": f["last_checkpoint"] / f["first_checkpoint"],
        "row": f["row"],
    }
    passed = {
        "rate": ratios["rate"] >= TARGETS["rate"],
        "checkpoint": ratios["checkpoint"] <= TARGETS["checkpoint"],
        "row": ratios["row"] <= TARGETS["row"],
    }
    mark = {True: "met", False: "NOT MET"}
    out(f"\n{epochs} epochs in {f['seconds']:.0f} s, {f['events']:.0f} events in its stream")
    out(f"  epoch rate, first tenth   {f['first_rate']:8.1f} epochs/s")
    out(f"  epoch rate, last tenth    {f['last_rate']:8.1f} epochs/s")
    out(
        f"  last : first tenth        {ratios['rate']:8.3f}   (target >= {TARGETS['rate']})"
        f"  {mark[passed['rate']]}"
    )
    out(
        f"  CheckpointSaved, first    {f['first_checkpoint']:8.0f} B, last"
        f" {f['last_checkpoint']:.0f} B: {ratios['checkpoint']:.3f}x"
        f"   (target <= {TARGETS['checkpoint']})  {mark[passed['checkpoint']]}"
    )
    out(
        f"  operation row             {f['row']:8.0f} B   (target <= {TARGETS['row']:.0f})"
        f"  {mark[passed['row']]}"
    )
    per_thousand = f["growth"] / epochs * 1000
    out(
        f"  database growth           {per_thousand / 1024:8.1f} KB per 1,000 epochs"
        f" ({f['growth'] / f['events']:.0f} B per event, without WAL)"
    )
    return all(passed.values())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5000, help="how long the run is")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("KTRDR_BENCH_DATABASE_URL"),
        help="a server to use instead of an embedded one; a scratch database is made on it",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with (
        server(args.database_url) as admin_url,
        scratch_database(admin_url) as url,
        tempfile.TemporaryDirectory(prefix="ktrdr-long-run-") as tmp,
    ):
        figures = measure(url, Path(tmp), args.epochs)
    return 0 if report(args.epochs, figures) else 1


if __name__ == "__main__":
    sys.exit(main())
