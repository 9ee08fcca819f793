"""`ktrdr tokens` and the first admin token, as a user meets them: real processes."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_db_cli import KTRDR, clean_env, free_port, run


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return clean_env(KTRDR_DATABASE_URL=database_url, KTRDR_DATA_DIR=str(tmp_path))


@pytest.fixture
def serve(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*KTRDR, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).is_success:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "serve never answered"
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_first_start_writes_an_admin_token_the_cli_uses(
    serve: str, env: dict[str, str], tmp_path: Path
) -> None:
    token_file = tmp_path / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    secret = token_file.read_text().strip()
    assert httpx.get(f"{serve}/api/v1/operations", timeout=5).status_code == 401
    auth = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{serve}/api/v1/operations", headers=auth, timeout=5).status_code == 200
    listed = run(["operations", "list", "--json", "--url", serve], env)
    assert listed.returncode == 0, listed.stderr

    [admin] = json.loads(run(["tokens", "list", "--json"], env).stdout)
    assert admin["name"] == "admin" and admin["role"] == "admin"
    assert secret not in json.dumps(admin)


def test_create_list_revoke(serve: str, env: dict[str, str]) -> None:
    created = run(["tokens", "create", "--role", "viewer", "--name", "bob", "--json"], env)
    assert created.returncode == 0, created.stderr
    made = json.loads(created.stdout)
    assert set(made) >= {"token", "token_id", "name", "role"} and made["role"] == "viewer"
    auth = {"Authorization": f"Bearer {made['token']}"}
    assert httpx.get(f"{serve}/api/v1/operations", headers=auth, timeout=5).status_code == 200
    create = httpx.post(
        f"{serve}/api/v1/operations", json={"operation_type": "training"}, headers=auth
    )
    assert create.status_code == 403 and create.json()["code"] == "FORBIDDEN"

    listed = json.loads(run(["tokens", "list", "--json"], env).stdout)
    [bob] = [t for t in listed if t["name"] == "bob"]
    assert {"token_id", "name", "role", "created_at", "last_used_at"} <= set(bob)
    assert bob["last_used_at"] is not None and made["token"] not in json.dumps(listed)

    revoked = run(["tokens", "revoke", made["token_id"]], env)
    assert revoked.returncode == 0, revoked.stderr
    answer = httpx.get(f"{serve}/api/v1/operations", headers=auth, timeout=5)
    assert answer.status_code == 401 and answer.json()["code"] == "UNAUTHENTICATED"

    unknown = run(["tokens", "revoke", "0" * 32], env)
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: ")
    assert "Traceback" not in unknown.stderr


def test_a_worker_id_is_bound_to_one_token(env: dict[str, str]) -> None:
    first = run(["tokens", "create", "--role", "worker", "--name", "w", "--worker-id", "w-1"], env)
    assert first.returncode == 0, first.stderr
    again = run(["tokens", "create", "--role", "worker", "--name", "x", "--worker-id", "w-1"], env)
    assert again.returncode == 1 and "bound to another token" in again.stderr


def test_auth_off_is_refused_off_loopback(env: dict[str, str]) -> None:
    refused = run(
        ["serve", "--host", "0.0.0.0", "--port", str(free_port())], env | {"KTRDR_AUTH": "off"}
    )
    assert refused.returncode == 2 and "KTRDR_AUTH=off" in refused.stderr
