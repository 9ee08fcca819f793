"""How the operational CLI reads its input and writes values, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import typer

from ktrdr.cli.operations import parse_params
from ktrdr.cli.output import age, size

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
