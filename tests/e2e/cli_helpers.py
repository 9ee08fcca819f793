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
    live: LiveApi, *args: str, input: str | None = None, http: httpx.Client | None = None
) -> Result:
    """`ktrdr ARGS --url <live>`; ``http`` is the client the command talks through."""
    return runner.invoke(
        app, [*args, "--url", live.url], input=input, obj=http, env={"KTRDR_API_TOKEN": live.token}
    )


def json_of(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_error_line(result: Result) -> str:
    """The command failed with exactly one `error: …` line on stderr and nothing on stdout."""
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
