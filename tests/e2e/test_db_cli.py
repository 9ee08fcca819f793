"""`ktrdr db …` and `ktrdr serve` as a user runs them: real processes, real PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

KTRDR = [sys.executable, "-m", "ktrdr.cli.app"]


def run(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        KTRDR + args, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KTRDR_", "CHECKPOINT_"))}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_status_on_a_fresh_embedded_database(tmp_path: Path) -> None:
    env = clean_env(KTRDR_DATA_DIR=str(tmp_path / "data"))
    status = run(["db", "status"], env)
    assert status.returncode == 0, status.stderr
    assert "revision   0006 (head 0006)" in status.stdout
    assert "events     0" in status.stdout
    assert (tmp_path / "data" / "pgdata" / "PG_VERSION").exists()
    url = run(["db", "url"], env)
    assert url.returncode == 0 and url.stdout.startswith("postgresql://")
    # The server stops with the last process that used it: nothing left behind.
    time.sleep(0.5)
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "data" / "pgdata")], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == ""


def test_migrate_and_status_on_a_configured_database(empty_database_url: str) -> None:
    env = clean_env(
        KTRDR_DATABASE_URL=empty_database_url.replace("postgresql://", "postgresql+psycopg://")
    )
    before = run(["db", "status"], env)
    assert before.returncode == 0, before.stderr
    assert "revision   none (head 0006)" in before.stdout
    migrated = run(["db", "migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert "migrated to 0006" in migrated.stdout
    after = run(["db", "status"], env)
    assert "revision   0006 (head 0006)" in after.stdout and "events     0" in after.stdout


@pytest.mark.parametrize(
    ("env_extra", "code", "message"),
    [
        ({"KTRDR_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing"}, 1, "cannot reach"),
        ({"KTRDR_DATABASE_URL": "mysql://x@y/z"}, 2, "KTRDR_DATABASE_URL"),
        ({"KTRDR_HEARTBEAT_INTERVAL_SECONDS": "0"}, 2, "KTRDR_HEARTBEAT_INTERVAL_SECONDS"),
    ],
)
def test_bad_configuration_is_one_clear_line(
    env_extra: dict[str, str], code: int, message: str, tmp_path: Path
) -> None:
    result = run(["db", "status"], clean_env(KTRDR_DATA_DIR=str(tmp_path), **env_extra))
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_serve_answers_health_and_stops_on_sigterm(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*KTRDR, "serve", "--port", str(port)],
        env=clean_env(KTRDR_DATABASE_URL=database_url, KTRDR_DATA_DIR=str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                body = response.json()
                if set(body["processors"].values()) == {"active"}:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert body is not None, "server never answered"
        assert body["status"] == "ok" and body["database"] == {"reachable": True}
        expected = {
            "event_type_counts",
            "orphan_detector",
            "completion_cleanup",
            "checkpoint_cleanup",
        }
        assert expected <= set(body["processors"])
        assert set(body["processors"].values()) == {"active"}
        schema = httpx.get(f"http://127.0.0.1:{port}/schema/openapi.json", timeout=5).json()
        assert "/api/v1/health" in schema["paths"]
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "Application shutdown complete" in output


def test_serve_on_the_embedded_default_stops_its_postgres_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [*KTRDR, "serve", "--port", str(port)],
        env=clean_env(KTRDR_DATA_DIR=str(data)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).is_success:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        running = subprocess.run(["pgrep", "-f", str(data / "pgdata")], capture_output=True)
        assert running.stdout.strip(), "the embedded PostgreSQL should be running"
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    leftovers = subprocess.run(["pgrep", "-f", str(data / "pgdata")], capture_output=True)
    assert leftovers.stdout.strip() == b"", "a PostgreSQL process was left behind"
