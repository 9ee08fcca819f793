"""`ktrdr checkpoints …` against a live API on real PostgreSQL, and the OpenAPI schema."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from litestar.routes import HTTPRoute

from ktrdr.bootstrap.system import System
from tests.e2e.cli_helpers import failed_with_epochs, json_of, ktrdr, one_error_line
from tests.e2e.live_api import LiveApi, live_api
from tests.integration.api import drive
from tests.integration.api.drive import complete


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[LiveApi]:
    with live_api(database_url, tmp_path) as api:
        yield api


def fields(stdout: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in stdout.splitlines() if line and line[0] != " ")


def completed_keeping_checkpoints(live: LiveApi, epochs: list[int]) -> str:
    op = live.create(keep_checkpoints=True)

    async def run(system: System) -> None:
        await drive.claim(system, op)
        for epoch in epochs:
            await drive.checkpoint(system, op, {"epoch": epoch})
        await complete(system, op, {"accuracy": 0.9})

    live.drive(run)
    return op


def test_show_latest_and_verbose(live: LiveApi) -> None:
    op = failed_with_epochs(live, [1, 2])
    result = ktrdr(live, "checkpoints", "show", op)
    assert result.exit_code == 0, result.output
    shown = fields(result.stdout)
    assert shown["operation"] == op
    assert shown["latest"] == "#2 periodic, epoch 2"
    assert shown["kept"] == "#1, #2"
    assert shown["artifacts"] == "0 file(s) in -"
    assert "state:" not in result.stdout

    verbose = ktrdr(live, "checkpoints", "show", op, "-v")
    assert verbose.exit_code == 0, verbose.output
    assert '"epoch": 2' in verbose.stdout
    assert "#1 periodic, epoch 1" in verbose.stdout and "#2 periodic, epoch 2" in verbose.stdout

    raw = json_of(ktrdr(live, "checkpoints", "show", op, "--json"))
    assert raw == live.get(f"/checkpoints/{op}").json() and raw["state"] == {"epoch": 2}


def test_show_without_checkpoint_or_operation(live: LiveApi) -> None:
    pending = live.create()
    none = ktrdr(live, "checkpoints", "show", pending)
    assert none.exit_code == 1 and one_error_line(none).endswith("(CHECKPOINT_NOT_FOUND)")
    missing = ktrdr(live, "checkpoints", "show", str(uuid.uuid4()))
    assert missing.exit_code == 1 and one_error_line(missing).endswith("(OPERATION_NOT_FOUND)")
    assert ktrdr(live, "checkpoints", "show", "nope").exit_code == 2


def test_list_table_and_json(live: LiveApi) -> None:
    assert ktrdr(live, "checkpoints", "list").stdout == "no checkpoints\n"
    first = failed_with_epochs(live, [1, 2])
    second = failed_with_epochs(live, [7], operation_type="backtesting")
    result = ktrdr(live, "checkpoints", "list")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    assert rows["OPERATION"] == ["OPERATION", "TYPE", "CHECKPOINT", "SIZE", "AGE"]
    assert rows[first[:8]][1:4] == ["training", "#2", "periodic"]  # short ids
    assert rows[second[:8]][1:4] == ["backtesting", "#1", "periodic"]
    only = json_of(ktrdr(live, "checkpoints", "list", "--json", "--type", "backtesting"))
    assert [c["operation_id"] for c in only["items"]] == [second]


def test_delete_declined_deletes_nothing(live: LiveApi) -> None:
    op = failed_with_epochs(live, [1, 2])
    result = ktrdr(live, "checkpoints", "delete", op, input="n\n")
    assert result.exit_code == 1
    assert f"Delete 2 checkpoint(s) of operation {op}? It will no longer be resumable." in (
        result.stderr
    )
    assert result.stderr.strip().endswith("aborted")
    assert result.stdout.split() == ["n"]  # CliRunner echoes the typed answer on stdout
    assert live.get(f"/checkpoints/{op}/history").json()["total"] == 2
    assert live.get(f"/operations/{op}").json()["resumable"] is True


def test_delete_confirmed_then_the_operation_is_not_resumable(live: LiveApi) -> None:
    op = failed_with_epochs(live, [1, 2])
    result = ktrdr(live, "checkpoints", "delete", op, input="y\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"deleted checkpoint(s) #1, #2 of {op}"
    assert live.get(f"/checkpoints/{op}/history").json()["total"] == 0
    assert live.get(f"/operations/{op}").json()["resumable"] is False
    again = ktrdr(live, "checkpoints", "delete", op, "--force")
    assert again.exit_code == 1 and one_error_line(again).endswith("(CHECKPOINT_NOT_FOUND)")


def test_delete_warns_only_when_it_ends_resumability(live: LiveApi) -> None:
    op = completed_keeping_checkpoints(live, [1])
    result = ktrdr(live, "checkpoints", "delete", op, input="y\n")
    assert result.exit_code == 0, result.output
    assert f"Delete 1 checkpoint(s) of operation {op}?" in result.stderr
    assert "resumable" not in result.stderr


def test_delete_force_asks_nothing_and_json(live: LiveApi) -> None:
    op = failed_with_epochs(live, [1])
    result = ktrdr(live, "checkpoints", "delete", op, "--force", "--json")
    assert json_of(result) == {"operation_id": op, "deleted_sequences": [1]}
    assert result.stderr == ""
    missing = ktrdr(live, "checkpoints", "delete", str(uuid.uuid4()))
    assert missing.exit_code == 1 and one_error_line(missing).endswith("(OPERATION_NOT_FOUND)")


def test_delete_refused_while_running(live: LiveApi) -> None:
    op = live.create()

    async def run(system: System) -> None:
        await drive.claim(system, op)
        await drive.checkpoint(system, op, {"epoch": 1})

    live.drive(run)
    result = ktrdr(live, "checkpoints", "delete", op, "--force")
    assert result.exit_code == 1 and one_error_line(result).endswith("(OPERATION_BUSY)")


def test_stats(live: LiveApi) -> None:
    failed_with_epochs(live, [1, 2])
    failed_with_epochs(live, [3])
    result = ktrdr(live, "checkpoints", "stats")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == ["checkpoints 3 (periodic 3)", "operations  2"]
    assert re.search(r"^database    [\d.]+ [kK]?B of checkpoint rows", result.stdout, re.MULTILINE)
    assert re.search(r"^oldest      \d+s ago \(", result.stdout, re.MULTILINE)
    raw = json_of(ktrdr(live, "checkpoints", "stats", "--json"))
    assert raw == live.get("/checkpoints/stats").json() and raw["total_checkpoints"] == 3


def test_cleanup_deletes_only_expired_checkpoints(live: LiveApi) -> None:
    old = live.create()

    async def long_ago(system: System) -> None:
        past = system.bus.clock() - timedelta(days=40)
        system.bus.clock = lambda: past
        await drive.failed_with_checkpoints(system, old, [1])

    live.drive(long_ago)
    fresh = failed_with_epochs(live, [1])
    result = ktrdr(live, "checkpoints", "cleanup", "--max-age-days", "30")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("deleted 1 checkpoint(s), removed 0 orphan artifact folder(s)")
    assert live.get(f"/checkpoints/{old}/history").json()["total"] == 0
    assert live.get(f"/checkpoints/{fresh}/history").json()["total"] == 1
    report = json_of(ktrdr(live, "checkpoints", "cleanup", "--json"))
    assert report["checkpoints_deleted"] == 0
    assert ktrdr(live, "checkpoints", "cleanup", "--max-age-days", "0").exit_code == 2


def _openapi_path(route_path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", route_path)


def test_every_route_is_in_the_openapi_schema(live: LiveApi) -> None:
    schema = httpx.get(f"{live.url}/schema/openapi.json", timeout=10).json()
    routes = [r for r in live.app.routes if isinstance(r, HTTPRoute) and r.path.startswith("/api/")]
    assert len(routes) >= 8
    missing = [
        f"{method} {route.path}"
        for route in routes
        for method in route.methods - {"HEAD", "OPTIONS"}
        if method.lower() not in schema["paths"].get(_openapi_path(route.path), {})
    ]
    assert not missing, missing
