"""How the operational CLI reads its input and writes values, without a server."""

from __future__ import annotations

import io
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, get_args

import pytest
import typer
from rich.console import Console

from ktrdr.api.schemas import CheckpointTypeName, OperationTypeName
from ktrdr.api.schemas import Status as ApiStatus
from ktrdr.cli.demo import KTRDR, Demo
from ktrdr.cli.follow import Pace, latest_value, step_line
from ktrdr.cli.metrics import sparkline
from ktrdr.cli.operations import parse_params
from ktrdr.cli.output import (
    CheckpointType,
    OperationType,
    Status,
    UnresolvedId,
    age,
    clock,
    page_table,
    parse_operation_id,
    short,
    size,
    status_text,
    the_one,
)
from ktrdr.cli.tokens import Role as TokenRole
from ktrdr.domain.tokens import Role as DomainRole

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
        demo.api.close()
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


@pytest.mark.parametrize(
    ("cli", "api"),
    [(OperationType, OperationTypeName), (Status, ApiStatus), (CheckpointType, CheckpointTypeName)],
)
def test_the_cli_choices_are_the_apis(cli: type[StrEnum], api: Any) -> None:
    assert [c.value for c in cli] == list(get_args(api))


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("3F2B8C1E-0D4A-4C47-9A55-6F1E2D3C4B5A", "3f2b8c1e-0d4a-4c47-9a55-6f1e2d3c4b5a"),
        ("3f2b8c1e", "3f2b8c1e"),
        ("3F2B8C1E-0d", "3f2b8c1e-0d"),
        ("a", "a"),
    ],
)
def test_an_operation_id_or_a_prefix_of_one(raw: str, parsed: str) -> None:
    assert parse_operation_id(raw) == parsed


@pytest.mark.parametrize("raw", ["", "not-an-id", "3f2b8c1e0d4a4c479a556f1e2d3c4b5a00", "g1"])
def test_anything_else_is_not_an_operation_id(raw: str) -> None:
    with pytest.raises(typer.BadParameter, match="is not an operation id"):
        parse_operation_id(raw)


def _op(op_id: str) -> dict[str, Any]:
    created = (datetime.now(UTC) - timedelta(minutes=3)).isoformat()
    return {
        "operation_id": op_id,
        "operation_type": "training",
        "status": "failed",
        "created_at": created,
    }


def test_a_prefix_names_one_operation_or_says_why_not() -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    assert the_one("ab", {"items": [_op(a)], "total": 1}) == a
    with pytest.raises(UnresolvedId, match="^no operation id starts with 'ab'$"):
        the_one("ab", {"items": [], "total": 0})
    with pytest.raises(UnresolvedId) as ambiguous:
        the_one("ab", {"items": [_op(a), _op(b)], "total": 12})
    lines = str(ambiguous.value).splitlines()
    assert lines[0] == "'ab' is ambiguous: 12 operation ids start with it; give more digits:"
    assert lines[1:] == [
        f"  {a}  training  failed  3m",
        f"  {b}  training  failed  3m",
        "  … and 10 more",
    ]


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ([], ""),
        ([1.0], "▁"),
        ([3.0, 3.0, 3.0], "▁▁▁"),
        ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], "▁▂▃▄▅▆▇█"),
        ([7.0, 0.0], "█▁"),
    ],
)
def test_sparkline(values: list[float], line: str) -> None:
    assert sparkline(values) == line


def test_a_long_series_is_averaged_into_the_width() -> None:
    line = sparkline([float(i) for i in range(1000)], width=40)
    assert len(line) == 40 and line[0] == "▁" and line[-1] == "█"
    assert list(line) == sorted(line)


def _progress(**details: Any) -> dict[str, Any]:
    return {"percentage": 42.0, "current_step": "epoch 4/10", "message": None, "details": details}


@pytest.mark.parametrize(
    ("details", "shown"),
    [
        ({"running_loss": 0.9, "train_loss": 0.5, "val_loss": 0.314159}, "val_loss 0.3142"),
        ({"running_loss": 0.9, "train_loss": None}, "running_loss 0.9"),
        ({"portfolio_value": 1234567.891}, "portfolio 1,234,567.89"),
        ({}, None),
    ],
)
def test_the_latest_loss_or_value(details: dict[str, Any], shown: str | None) -> None:
    assert latest_value(_progress(**details)) == shown


def test_the_step_line_has_the_elapsed_time_and_eta() -> None:
    started = (datetime.now(UTC) - timedelta(minutes=2, seconds=5)).isoformat()
    op = {"status": "running", "started_at": started, "progress": _progress(val_loss=0.25)}
    line = step_line(op, eta=3725)
    assert line.startswith("epoch 4/10 · val_loss 0.25 · 2:0")
    assert line.endswith(" elapsed · ETA 1:02:05")
    assert "ETA" not in step_line(op | {"status": "completed"}, eta=3725)


def test_the_eta_is_the_workloads_else_from_the_pace_seen() -> None:
    pace = Pace()
    given = {"status": "running", "progress": _progress(eta_seconds=90.0)}
    assert pace.eta(given) == 90.0
    op = {"status": "running", "progress": {"percentage": 20.0, "details": {}}}
    assert pace.eta(op) is None  # one look: no pace yet
    assert pace.first is not None
    pace.first = (pace.first[0] - 10.0, 10.0)  # 10 % done in the last 10 s
    eta = pace.eta(op)
    assert eta is not None and 80.0 <= eta < 81.0  # 80 % left at 1 % a second


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0:00"), (42.9, "0:42"), (725, "12:05"), (10937, "3:02:17")]
)
def test_clock(seconds: float, shown: str) -> None:
    assert clock(seconds) == shown


def test_the_token_roles_of_the_cli_are_the_domains() -> None:
    assert {r.value for r in TokenRole} == {r.value for r in DomainRole}
