"""Losing the database under a running `ktrdr serve`: real processes, real PostgreSQL.

The embedded server is supervised (restarted after a kill -9), the API answers 503
DATABASE_UNAVAILABLE fast while the database is gone, and SIGTERM still ends the server.
The figures the tests measure are printed (run with -s to see them).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
import pytest

from ktrdr import ADMIN_TOKEN_FILE
from ktrdr.bootstrap import database
from tests.e2e.harness import KTRDR, base_env, free_port, wait_until

DOWN_SECONDS = 3.0
"""How long the test keeps the database down, killing every postmaster the supervisor starts."""
ANSWER_WITHIN = 2.0
BACK_WITHIN = 20.0
EXIT_WITHIN = 10.0


class Server:
    """`ktrdr serve` as a real process, its log in ``root``."""

    def __init__(self, root: Path, **env: str) -> None:
        self.root = root
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/api/v1"
        with open(root / "serve.log", "ab") as log:
            self.proc = subprocess.Popen(
                [*KTRDR, "serve", "--port", str(port)],
                env=base_env(KTRDR_DATA_DIR=str(root), **env),
                stdout=log,
                stderr=log,
            )

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        token = (self.root / ADMIN_TOKEN_FILE).read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        response = httpx.request(method, f"{self.url}{path}", timeout=30, headers=headers, **kwargs)
        return response, time.monotonic() - started

    def health(self) -> int | None:
        try:
            return httpx.get(f"{self.url}/health", timeout=5).status_code
        except httpx.TransportError:
            return None

    def create_operation(self) -> httpx.Response:
        body = {"operation_type": "training", "params": {"epochs": 1}}
        response, _ = self.request("POST", "/operations", json=body)
        return response

    def terminate(self) -> float:
        """SIGTERM; returns how long the process took to exit (killed after EXIT_WITHIN * 2)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=EXIT_WITHIN * 2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return time.monotonic() - started

    def log(self) -> str:
        return (self.root / "serve.log").read_text(errors="replace")


@contextlib.contextmanager
def serving(root: Path, **env: str) -> Iterator[Server]:
    server = Server(root, **env)
    try:
        wait_until(lambda: server.health() == 200, 60, "ktrdr serve to be healthy")
        yield server
    finally:
        if server.proc.poll() is None:
            server.terminate()
        kill_postgres_under(root)


def kill_postgres_under(root: Path) -> None:
    """Whatever PostgreSQL server still runs on a data directory under ``root``, and its
    backends (a frozen server's never notice that it is gone)."""
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(root) in arg for arg in proc.info["cmdline"] or []):
            with contextlib.suppress(psutil.NoSuchProcess):
                for child in proc.children(recursive=True):
                    child.kill()
                proc.kill()


def live_postmaster(pgdata: Path) -> int | None:
    """The pid in postmaster.pid when that process runs (a killed one may linger as a zombie)."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().partition("\n")[0])
        alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
        return None
    return pid if alive else None


@contextlib.contextmanager
def held_down(pgdata: Path) -> Iterator[set[int]]:
    """Kill -9 every postmaster that starts on ``pgdata`` for the block's lifetime.

    The supervisor restarts the server in a fraction of a second: without this, the
    window in which the database is gone would be too short to observe reliably.
    """
    killed: set[int] = set()
    done = threading.Event()

    def killer() -> None:
        while not done.is_set():
            pid = live_postmaster(pgdata)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
            done.wait(0.01)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        wait_until(lambda: killed, 5, "the first kill")
        yield killed
    finally:
        done.set()
        thread.join()


def assert_unavailable(response: httpx.Response, elapsed: float) -> float:
    assert response.status_code == 503, response.text
    assert elapsed < ANSWER_WITHIN, f"503 took {elapsed:.2f}s"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["code"] == "DATABASE_UNAVAILABLE"
    assert "retry" in body["detail"]
    return elapsed


def assert_health_unavailable(response: httpx.Response, elapsed: float) -> float:
    assert response.status_code == 503, response.text
    assert elapsed < ANSWER_WITHIN, f"health took {elapsed:.2f}s"
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"] == {"reachable": False}
    return elapsed


def test_fault_12_killed_embedded_postgres_is_restarted_and_503_meanwhile(
    tmp_path: Path,
) -> None:
    pgdata = tmp_path / "pgdata"
    with serving(tmp_path) as server:
        assert server.create_operation().status_code == 201
        first = live_postmaster(pgdata)
        assert first is not None

        # One kill -9: the supervisor notices and starts the server on the same data.
        killed_at = time.monotonic()
        os.kill(first, signal.SIGKILL)
        second = wait_until(
            lambda: (pid := live_postmaster(pgdata)) not in (None, first) and pid,
            BACK_WITHIN,
            "the embedded PostgreSQL to be restarted",
        )
        restarted = time.monotonic() - killed_at
        wait_until(lambda: server.health() == 200, BACK_WITHIN, "health 200 after a restart")
        healthy = time.monotonic() - killed_at
        assert server.create_operation().status_code == 201, server.log()[-4000:]
        print(
            f"\nsingle kill -9: postmaster {first} -> {second} restarted after {restarted:.2f}s,"
            f" health 200 after {healthy:.2f}s"
        )

        # Held down: every call that needs the database answers 503 at once, health too.
        with held_down(pgdata) as killed:
            first_503 = assert_unavailable(*server.request("GET", "/operations"))
            answered = [first_503]
            deadline = time.monotonic() + DOWN_SECONDS
            while time.monotonic() < deadline:
                answered.append(assert_health_unavailable(*server.request("GET", "/health")))
                answered.append(assert_unavailable(*server.request("GET", "/operations")))
            body = {"operation_type": "training", "params": {}}
            answered.append(assert_unavailable(*server.request("POST", "/operations", json=body)))
        released_at = time.monotonic()

        wait_until(lambda: server.health() == 200, BACK_WITHIN, "health 200 once released")
        back = time.monotonic() - released_at
        created = server.create_operation()
        assert created.status_code == 201, created.text
        listed, _ = server.request("GET", "/operations")
        assert listed.status_code == 200
        log = server.log()
        assert "died; starting it again" in log and "the embedded PostgreSQL is back" in log
        print(
            f"held down {DOWN_SECONDS:.0f}s ({len(killed)} postmasters killed): first 503 in"
            f" {first_503:.2f}s, slowest of {len(answered)} in {max(answered):.2f}s;"
            f" API back {back:.2f}s after the last kill"
        )


def freeze(pid: int) -> None:
    """SIGSTOP a server and its backends: connections stay open and nothing ever answers."""
    postmaster = psutil.Process(pid)
    for proc in [postmaster, *postmaster.children()]:
        proc.suspend()


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_fault_12_sigterm_exits_promptly_with_the_database_gone(fault: str, tmp_path: Path) -> None:
    # Not stopped at exit by the library: it would wait a minute on the killed server.
    postgres = database.start_embedded(tmp_path / "pgdata", stop_on_exit=False)
    try:
        url = database.embedded_url(tmp_path / "pgdata")
        with serving(tmp_path, KTRDR_DATABASE_URL=url) as server:
            if fault == "killed":
                os.kill(postgres.get_pid(), signal.SIGKILL)
            else:
                freeze(postgres.get_pid())
            # Requests in flight when SIGTERM comes: shutdown must not wait on the pool,
            # nor on a query to a server that never answers.
            with ThreadPoolExecutor(4) as calls:
                answers = [calls.submit(server.request, "GET", "/operations") for _ in range(3)]
                health = calls.submit(server.request, "GET", "/health")
                time.sleep(0.5)
                took = server.terminate()
            print(f"\nSIGTERM with the database {fault}: exited after {took:.2f}s")
            assert took < EXIT_WITHIN, server.log()[-4000:]
            assert server.proc.returncode == 0, server.log()[-4000:]
            response, elapsed = health.result()
            assert response.status_code == 503 and elapsed < ANSWER_WITHIN
            if fault == "killed":
                assert {a.result()[0].status_code for a in answers} == {503}
    finally:
        kill_postgres_under(tmp_path)


def test_fault_12_serve_without_a_database_fails_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [*KTRDR, "serve", "--port", str(free_port())],
        env=base_env(
            KTRDR_DATA_DIR=str(tmp_path),
            KTRDR_DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot reach PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
