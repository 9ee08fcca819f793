"""How the operational CLI reads its input and writes values, without a server."""

from __future__ import annotations

import io
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console

from ktrdr.cli.demo import KTRDR, Demo
from ktrdr.cli.operations import parse_params
from ktrdr.cli.output import age, page_table, short, size, status_text

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ago", "shown"),
    [
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=3, seconds=59), "3m"),
        (timedelta(hours=2, minutes=30), "2h"),
        (timedelta(days=5, hours=23), "5d"),
        (timedelta(seconds=-5), "0s"),
    ],
)
def test_age_in_the_largest_whole_unit(ago: timedelta, shown: str) -> None:
    assert age((NOW - ago).isoformat(), now=NOW) == shown


def test_age_of_nothing() -> None:
    assert age(None) == "-"


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KB"),
        (5 * 1024**2, "5.0 MB"),
        (3 * 1024**4, "3072.0 GB"),
    ],
)
def test_size(n: int, shown: str) -> None:
    assert size(n) == shown


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("n=5", 5),
        ("n=0.5", 0.5),
        ("n=true", True),
        ("n=null", None),
        ("n=[1, 2]", [1, 2]),
        ('n={"a": 1}', {"a": 1}),
        ('n="5"', "5"),
        ("n=EURUSD", "EURUSD"),
        ("n=a=b", "a=b"),
        ("n=NaN", "NaN"),
        ("n=", ""),
    ],
)
def test_param_values_are_json_when_they_parse(raw: str, value: Any) -> None:
    assert parse_params([raw], None) == {"n": value}


def test_params_override_params_json() -> None:
    assert parse_params(["a=2", "c=3"], '{"a": 1, "b": 1}') == {"a": 2, "b": 1, "c": 3}


@pytest.mark.parametrize(
    ("pairs", "params_json"),
    [(["novalue"], None), (["=1"], None), ([], "[1]"), ([], "{bad"), ([], '{"x": NaN}')],
)
def test_malformed_params_are_refused(pairs: list[str], params_json: str | None) -> None:
    with pytest.raises(typer.BadParameter):
        parse_params(pairs, params_json)


@pytest.mark.parametrize("columns", [80, 120])
def test_the_demo_shows_a_command_as_the_command_laid_it_out(tmp_path: Path, columns: int) -> None:
    console = Console(width=columns, file=io.StringIO(), color_system=None)
    demo = Demo(tmp_path, console)
    try:
        demo.cli("events", "--help")
    finally:
        demo.http.close()
    direct = subprocess.run(
        [*KTRDR, "events", "--help"],
        env=demo.env() | {"COLUMNS": str(columns)},
        capture_output=True,
        text=True,
        check=True,
    )
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert shown.rstrip() == direct.stdout.rstrip()
    assert all(len(line) <= columns for line in shown.splitlines())
    assert "replay" in shown and "…" not in shown


def _page(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"items": list(rows), "total": len(rows) + 3}


@pytest.mark.parametrize("columns", [80, 120])
def test_a_listing_wraps_to_fit_and_keeps_its_details_and_age(columns: int) -> None:
    long_summary = "epoch 12 of 400, validation loss 0.031415926 at learning rate 0.0001"
    rows = [
        (short(str(uuid.uuid4())), "agent_research", status_text(s), "100%", long_summary, "59m")
        for s in ("completed", "failed", "cancelled")
    ]
    table = page_table(_page({}, {}, {}), COLUMNS, rows, right="PROGRESS")
    console = Console(width=columns, file=io.StringIO(), color_system=None)
    console.print(table)
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    lines = shown.splitlines()
    assert all(len(line) <= columns for line in lines) and "…" not in shown
    assert next(line for line in lines if line.strip()).split() == list(COLUMNS)
    starts = [
        line.split() for line in lines if line.strip() and line.split()[0] in {r[0] for r in rows}
    ]
    assert [row[-1] for row in starts] == ["59m"] * 3
    assert [row[1:3] for row in starts] == [
        ["agent_research", "completed"],
        ["agent_research", "failed"],
        ["agent_research", "cancelled"],
    ]
    assert set(long_summary.split()) <= set(shown.split())  # wrapped at spaces, all of it
    assert "3 of 6" in shown


COLUMNS = ("ID", "TYPE", "STATUS", "PROGRESS", "CHECKPOINT", "AGE")
