"""A PostgreSQL that freezes for longer than the orphan timeout fails no live work (issue 10,
item 11): real server, real worker, the database's processes stopped with SIGSTOP."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import psycopg
import pytest
from psycopg import sql

from ktrdr.bootstrap import database
from ktrdr.config import with_database
from tests.e2e.harness import Cluster, cluster

FREEZE_SECONDS = 6.0


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Any]:
    """An embedded PostgreSQL of this test's own: freezing the shared one would stall others."""
    server = database.start_embedded(tmp_path / "pgdata")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def c(own_server: Any, tmp_path: Path) -> Iterator[Cluster]:
    admin = str(own_server.get_uri())
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("stall")))
    url = with_database(admin, "stall")
    database.migrate(url)
    root = tmp_path / "cluster"
    root.mkdir()
    yield from cluster(url, root, orphan_timeout=3.0, heartbeat_interval=0.5)


@contextlib.contextmanager
def frozen(server: Any) -> Iterator[None]:
    postmaster = server.get_postmaster_info().process
    processes = [postmaster, *postmaster.children(recursive=True)]
    for process in processes:
        process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGCONT)


def test_fault_11_a_database_stall_never_counts_against_a_worker(
    c: Cluster, own_server: Any
) -> None:
    c.start_server()
    c.start_worker("a", step_seconds=0.1)
    op = c.start(epochs=100, checkpoint_every_epochs=20)  # about 10 s
    c.wait_checkpoint(op, 1)
    with frozen(own_server):
        time.sleep(FREEZE_SECONDS)  # twice the orphan timeout
    thawed = time.monotonic()
    done = c.wait_status(op, {"completed", "failed"}, timeout=60)
    print(
        f"database frozen {FREEZE_SECONDS:g}s (orphan timeout {c.orphan_timeout:g}s):"
        f" operation {done['status']} {time.monotonic() - thawed:.1f}s after the thaw"
    )
    assert done["status"] == "completed", done["error"]
    assert done["attempt"] == 1
    assert "OperationFailed" not in [e["event_type"] for e in c.events(op)]
