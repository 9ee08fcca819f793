"""What `ktrdr serve` and `ktrdr worker` log: one format, the story of operations at INFO,
HTTP lines only at DEBUG, and a wrong API URL said once with what to fix."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import KTRDR, Cluster, base_env, cluster, free_port

LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: "
)
HTTP_LINES = ("HTTP Request:", '"GET /api/v1', '"POST /api/v1')


@pytest.fixture
def c(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    yield from cluster(database_url, tmp_path)


def _log_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(errors="replace").splitlines() if line.strip()]


def test_one_format_operations_at_info_http_only_at_debug(c: Cluster) -> None:
    c.start_server()
    c.start_worker("w1", workload="counter")
    op = c.start("training", epochs=3)
    c.wait_status(op, "completed")
    c.stop()
    worker = _log_lines(c.root / "worker-w1.log")
    server = _log_lines(c.root / f"server-{c.port}.log")
    for line in worker + server:
        assert LINE.match(line), line
        assert not any(http in line for http in HTTP_LINES), line
    story = "\n".join(worker)
    for said in ("registered as w1", f"claimed {op} (attempt 1)", f"completed {op}"):
        assert said in story, story
    assert any("Uvicorn running on" in line for line in server), server


def _worker_against(url: str, tmp_path: Path, level: str, seconds: float) -> str:
    env = base_env(
        KTRDR_DATA_DIR=str(tmp_path),
        KTRDR_LOG_LEVEL=level,
        KTRDR_HEARTBEAT_INTERVAL_SECONDS="0.1",
        KTRDR_ORPHAN_TIMEOUT_SECONDS="1",
        KTRDR_TEST_HOOKS="workload=counter",
    )
    proc = subprocess.Popen(
        [*KTRDR, "worker", "training", "--url", url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(seconds)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    return output


def test_a_worker_pointed_at_a_wrong_url_says_so_once(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    output = _worker_against(url, tmp_path, "INFO", 4)
    told = [line for line in output.splitlines() if "cannot reach the API" in line]
    assert len(told) == 1, output
    assert f"cannot reach the API at {url}: is `ktrdr serve` running there?" in told[0]
    assert "KTRDR_API_URL" in told[0] and " WARNING " in told[0]
    assert "Traceback" not in output and "HTTP Request" not in output

    quiet = _worker_against(url, tmp_path, "DEBUG", 4)
    assert sum("cannot reach the API at" in line for line in quiet.splitlines()) == 1
    assert sum("still cannot reach the API" in line for line in quiet.splitlines()) >= 2, quiet
