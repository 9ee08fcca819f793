"""Real processes for end-to-end tests: `ktrdr serve` and `ktrdr worker` on a test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ktrdr import ADMIN_TOKEN_FILE
from ktrdr.workers.test_hooks import ENV as TEST_HOOKS_ENV

KTRDR = [sys.executable, "-m", "ktrdr.cli.app"]
TERMINAL = {"completed", "failed", "cancelled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KTRDR_", "CHECKPOINT_"))}
    env.update(extra)
    return env


def wait_until(condition: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


@dataclass
class Cluster:
    """A backend and its workers on one database, with short timeouts."""

    database_url: str
    root: Path
    orphan_timeout: float = 3.0
    heartbeat_interval: float = 0.3
    retry_max_attempts: int = 1
    """The backend's default: 1, the manual flow most tests follow; the retry tests raise it."""
    port: int = field(default_factory=free_port)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        """As an admin: the token the first server wrote into the data dir."""
        token = (self.root / ADMIN_TOKEN_FILE).read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    def env(self, **extra: str) -> dict[str, str]:
        settings = {
            "KTRDR_DATABASE_URL": self.database_url,
            "KTRDR_DATA_DIR": str(self.root),
            "CHECKPOINT_ARTIFACTS_PATH": str(self.root / "artifacts"),
            "KTRDR_ORPHAN_TIMEOUT_SECONDS": str(self.orphan_timeout),
            "KTRDR_HEARTBEAT_INTERVAL_SECONDS": str(self.heartbeat_interval),
            "KTRDR_SHUTDOWN_TIMEOUT_SECONDS": "20",
            "KTRDR_RETRY_MAX_ATTEMPTS": str(self.retry_max_attempts),
            "KTRDR_API_URL": self.url,
        }
        return base_env(**(settings | self.extra_env | extra))

    def _spawn(
        self, args: list[str], name: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        # The child keeps its own copy of the log's descriptor; ours closes at once.
        with open(self.root / f"{name}.log", "ab") as log:
            return subprocess.Popen(args, env=self.env(**(env or {})), stdout=log, stderr=log)

    def start_server(self, port: int | None = None) -> subprocess.Popen[bytes]:
        port = port or self.port
        proc = self._spawn([*KTRDR, "serve", "--port", str(port)], f"server-{port}")
        self.servers.append(proc)
        wait_until(lambda: self._healthy(port), 60, f"server on port {port}")
        return proc

    def _healthy(self, port: int) -> bool:
        try:
            body = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).json()
        except (httpx.HTTPError, ValueError):
            return False
        return body.get("status") == "ok"

    def start_worker(
        self,
        worker_id: str,
        worker_type: str = "training",
        workload: str | None = "counter",
        env: dict[str, str] | None = None,
        **hooks: object,
    ) -> subprocess.Popen[bytes]:
        """Start a worker and wait until it registered; ``env`` overrides its environment
        (``KTRDR_API_URL`` to reach the backend another way, its own timing settings);
        ``workload`` and ``hooks`` (``step_seconds``, ``fail_at_epoch``…) are its test hooks."""
        args = [*KTRDR, "worker", worker_type, "--worker-id", worker_id]
        hooks = {"workload": workload, **hooks} if workload else hooks
        env = {**(env or {}), TEST_HOOKS_ENV: ",".join(f"{k}={v}" for k, v in hooks.items())}
        proc = self._spawn(args, f"worker-{worker_id}", env)
        self.workers[worker_id] = proc
        wait_until(
            lambda: self.worker_status(worker_id) in ("available", "busy"),
            30,
            f"worker {worker_id} to register",
        )
        return proc

    def worker_status(self, worker_id: str) -> str | None:
        try:
            items = self.get("/workers", include_deregistered="true")["items"]
        except (httpx.HTTPError, OSError):
            return None
        return next((w["status"] for w in items if w["worker_id"] == worker_id), None)

    def signal(self, worker_id: str, signum: int) -> None:
        os.kill(self.workers[worker_id].pid, signum)

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(
            f"{self.url}/api/v1{path}", params=params, timeout=10, headers=self.headers
        )
        response.raise_for_status()
        return response.json()

    def post(self, path: str, json: Any = None) -> httpx.Response:
        return httpx.post(f"{self.url}/api/v1{path}", json=json, timeout=10, headers=self.headers)

    def start(self, operation_type: str = "training", **params: Any) -> str:
        return self.create({"operation_type": operation_type, "params": params})

    def create(self, body: dict[str, Any]) -> str:
        response = self.post("/operations", body)
        assert response.status_code == 201, response.text
        return str(response.json()["operation_id"])

    def operation(self, op: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/operations/{op}")
        return result

    def events(self, op: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(f"/operations/{op}/events")["items"]
        return items

    def wait_status(self, op: str, statuses: set[str] | str, timeout: float = 60) -> dict[str, Any]:
        wanted = {statuses} if isinstance(statuses, str) else statuses
        found: dict[str, Any] = wait_until(
            lambda: (o := self.operation(op))["status"] in wanted and o,
            timeout,
            f"operation {op} to be {wanted}",
        )
        return found

    def wait_checkpoint(self, op: str, sequence: int = 1, timeout: float = 60) -> dict[str, Any]:
        found: dict[str, Any] = wait_until(
            lambda: (
                (o := self.operation(op))["checkpoint"]
                and o["checkpoint"]["sequence"] >= sequence
                and o
            ),
            timeout,
            f"checkpoint {sequence} of {op}",
        )
        return found

    def stop(self) -> None:
        for proc in [*self.workers.values(), *self.servers]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in [*self.workers.values(), *self.servers]:
            proc.wait(timeout=30)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in self.root.glob("*.log")
        )


def cluster(database_url: str, root: Path, **kwargs: Any) -> Iterator[Cluster]:
    c = Cluster(database_url, root, **kwargs)
    try:
        yield c
    finally:
        c.stop()
