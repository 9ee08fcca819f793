"""Run `ktrdr` in-process against a live API, and move operations along as workers would."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
from typer.testing import CliRunner, Result

from ktrdr.bootstrap.system import System
from ktrdr.cli.app import app
from tests.e2e.live_api import LiveApi
from tests.integration.api import drive

runner = CliRunner()


def ktrdr(
    live: LiveApi,
    *args: str,
    input: str | None = None,
    http: httpx.Client | None = None,
    columns: int | None = None,
) -> Result:
    """`ktrdr ARGS --url <live>`; ``http`` is the client the command talks through;
    ``columns``: the terminal's width (else 200, as when piped)."""
    env = {"KTRDR_API_TOKEN": live.token} | ({"COLUMNS": str(columns)} if columns else {})
    return runner.invoke(app, [*args, "--url", live.url], input=input, obj=http, env=env)


def table_fits(output: str, columns: int, headers: tuple[str, ...]) -> list[str]:
    """The table's lines, once checked: within ``columns``, nothing cut short (no "…"),
    every header present. Returns its lines."""
    lines = output.splitlines()
    assert all(len(line) <= columns for line in lines), output
    assert "…" not in output, output
    header = next(line for line in lines if line.split()[:1] == [headers[0]])
    assert header.split() == list(headers), header
    return lines


def json_of(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_error_line(result: Result, code: int = 1) -> str:
    """The command failed with exit ``code`` (1: a refused or unreachable request) and
    exactly one `error: …` line on stderr, nothing on stdout."""
    assert result.exit_code == code, result.output
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def unused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def failed_with_epochs(live: LiveApi, epochs: list[int], operation_type: str = "training") -> str:
    op = live.create(operation_type)

    async def run(system: System) -> None:
        await drive.failed_with_checkpoints(system, op, epochs)

    live.drive(run)
    return op
