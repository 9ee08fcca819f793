"""A REST command loads neither the database stack, the server nor torch (benchmarks/cli_startup.py
measures what that saves): pinned by the modules a fresh interpreter holds after one."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "alembic",
    "sqlalchemy",
    "litestar",
    "uvicorn",
    "torch",
    "numpy",
    "psycopg",
    "pydantic_settings",
    "ktrdr.config",
    "ktrdr.domain",
    "ktrdr.bootstrap",
    "ktrdr.api",
    "ktrdr.workers",
    "ktrdr.eventlog",
    "ktrdr.projections",
    "asyncio",
)

RUN_AND_LIST_MODULES = """
import json, sys
from ktrdr.cli.app import main
sys.argv = ["ktrdr", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
with open(sys.argv_file, "w") as f:
    json.dump(sorted(sys.modules), f)
"""


def _unused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def modules_after(args: list[str], tmp_path: Path) -> set[str]:
    listing = tmp_path / "modules.json"
    code = RUN_AND_LIST_MODULES.replace("sys.argv_file", repr(str(listing)))
    subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)], capture_output=True, check=True, timeout=60
    )
    return set(json.loads(listing.read_text()))


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["operations", "list"],
        ["operations", "show", "0b7f"],
        ["checkpoints", "show", "0b7f"],
        ["workers", "list"],
    ],
)
def test_a_rest_command_loads_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    url = [] if args == ["--help"] else ["--url", _unused_url()]
    loaded = modules_after([*args, *url], tmp_path)
    assert "ktrdr.cli.app" in loaded and "httpx" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert heavy == []
