"""What a `ktrdr` REST command costs in CPU before and around its one HTTP request.

    .venv/bin/python benchmarks/cli_startup.py [--runs 7] [--url URL]

Each case runs ``--runs`` times as a child process; its CPU is the user + system time
of that child alone (the growth of ``getrusage(RUSAGE_CHILDREN)`` across its run), and
the median is shown. Cases:

* ``python -c pass``: the interpreter alone (baseline);
* ``python -c "import httpx, typer, rich"``: the libraries a REST command cannot do
  without (baseline);
* ``ktrdr --help``;
* ``ktrdr operations list`` against a live server: ``--url``, else a ``ktrdr serve``
  started here on an embedded PostgreSQL in a temporary directory (removed afterwards),
  or on KTRDR_DATABASE_URL when it is set.

Target: ``ktrdr operations list`` under 0.3 s of CPU. Each ``ratio`` line divides a
case's CPU by a baseline's, both measured in this run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

KTRDR = [sys.executable, "-m", "ktrdr.cli.app"]
TARGET_CPU_SECONDS = 0.3
START_TIMEOUT_SECONDS = 120.0
PASS = "python -c pass"
LIBRARIES = 'python -c "import httpx, typer, rich"'


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_of(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """CPU seconds (user + system) and wall seconds of one run of ``argv``."""
    before, started = _children_cpu(), time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    wall, cpu = time.perf_counter() - started, _children_cpu() - before
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()}")
    return cpu, wall


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"`ktrdr serve` never answered at {url}")


@contextlib.contextmanager
def live_server(url: str | None) -> Iterator[str]:
    """``url`` as it is, else a `ktrdr serve` of our own until the block ends."""
    if url:
        yield url
        return
    root = Path(tempfile.mkdtemp(prefix="ktrdr-cli-bench-"))
    port = _free_port()
    env = {**os.environ, "KTRDR_DATA_DIR": str(root)}
    with open(root / "server.log", "wb") as log:
        server = subprocess.Popen(
            [*KTRDR, "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)


def cases(url: str) -> dict[str, list[str]]:
    return {
        PASS: [sys.executable, "-c", "pass"],
        LIBRARIES: [sys.executable, "-c", "import httpx, typer, rich"],
        "ktrdr --help": [*KTRDR, "--help"],
        "ktrdr operations list": [*KTRDR, "operations", "list", "--url", url],
    }


def measure(url: str, runs: int) -> dict[str, tuple[float, float]]:
    """Median CPU and wall seconds per case; the runs of the cases are interleaved."""
    env = {**os.environ, "COLUMNS": "120"}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases(url)}
    for _ in range(runs):
        for name, argv in cases(url).items():
            samples[name].append(cpu_of(argv, env))
    return {
        name: (statistics.median(c for c, _ in got), statistics.median(w for _, w in got))
        for name, got in samples.items()
    }


def report(results: dict[str, tuple[float, float]], runs: int) -> bool:
    print(f"CPU (user+sys of the child) and wall time, median of {runs} runs")
    for name, (cpu, wall) in results.items():
        print(f"  {name:<40} cpu {cpu:6.3f} s   wall {wall:6.3f} s")
    for name in ("ktrdr --help", "ktrdr operations list"):
        for baseline in (PASS, LIBRARIES):
            ratio = results[name][0] / max(results[baseline][0], 1e-3)
            print(f"ratio {name} / {baseline}: {ratio:.1f}x")
    listing = results["ktrdr operations list"][0]
    ok = listing < TARGET_CPU_SECONDS
    verdict = "meets" if ok else "MISSES"
    print(f"target: ktrdr operations list {listing:.3f} s {verdict} < {TARGET_CPU_SECONDS} s")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--url", help="a running ktrdr API (default: start one here)")
    args = parser.parse_args(argv)
    with live_server(args.url) as url:
        results = measure(url, args.runs)
    return 0 if report(results, args.runs) else 1


if __name__ == "__main__":
    sys.exit(main())
