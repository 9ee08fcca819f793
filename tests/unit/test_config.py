from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.config import (
    SettingsError,
    load_settings,
    normalize_database_url,
    redact,
    sqlalchemy_url,
    with_database,
)

ALL_NAMES = [
    "KTRDR_DATABASE_URL",
    "KTRDR_DATA_DIR",
    "CHECKPOINT_ARTIFACTS_PATH",
    "CHECKPOINT_MAX_AGE_DAYS",
    "CHECKPOINT_CLEANUP_INTERVAL_HOURS",
    "KTRDR_ORPHAN_TIMEOUT_SECONDS",
    "KTRDR_HEARTBEAT_INTERVAL_SECONDS",
    "KTRDR_CHECKPOINT_EPOCH_INTERVAL",
    "KTRDR_CHECKPOINT_TIME_INTERVAL_SECONDS",
    "KTRDR_API_URL",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("KTRDR_" + name, raising=False)


def test_defaults_match_the_design() -> None:
    s = load_settings()
    assert s.database_url is None
    assert s.checkpoint_max_age_days == 30
    assert s.checkpoint_cleanup_interval_hours == 24
    assert s.orphan_timeout_seconds == 60
    assert s.heartbeat_interval_seconds == 10
    assert s.checkpoint_epoch_interval == 10
    assert s.checkpoint_time_interval_seconds == 300
    assert s.api_url == "http://127.0.0.1:8000"
    assert s.artifacts_path == s.data_dir / "artifacts"


def test_every_design_name_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    values = {
        "KTRDR_DATABASE_URL": "postgresql://u@h:5432/d",
        "KTRDR_DATA_DIR": str(tmp_path),
        "CHECKPOINT_ARTIFACTS_PATH": str(tmp_path / "a"),
        "CHECKPOINT_MAX_AGE_DAYS": "7",
        "CHECKPOINT_CLEANUP_INTERVAL_HOURS": "2",
        "KTRDR_ORPHAN_TIMEOUT_SECONDS": "3",
        "KTRDR_HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "KTRDR_CHECKPOINT_EPOCH_INTERVAL": "4",
        "KTRDR_CHECKPOINT_TIME_INTERVAL_SECONDS": "9",
        "KTRDR_API_URL": "http://example:1",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert (s.database_url, s.data_dir, s.artifacts_path) == (
        "postgresql://u@h:5432/d",
        tmp_path,
        tmp_path / "a",
    )
    assert (s.checkpoint_max_age_days, s.checkpoint_cleanup_interval_hours) == (7, 2)
    assert (s.orphan_timeout_seconds, s.heartbeat_interval_seconds) == (3, 0.5)
    assert (s.checkpoint_epoch_interval, s.checkpoint_time_interval_seconds) == (4, 9)
    assert s.api_url == "http://example:1"


def test_prefixed_spellings_of_checkpoint_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_CHECKPOINT_MAX_AGE_DAYS", "5")
    monkeypatch.setenv("KTRDR_CHECKPOINT_CLEANUP_INTERVAL_HOURS", "6")
    monkeypatch.setenv("KTRDR_CHECKPOINT_ARTIFACTS_PATH", "/srv/art")
    s = load_settings()
    assert s.checkpoint_max_age_days == 5
    assert s.checkpoint_cleanup_interval_hours == 6
    assert s.artifacts_path == Path("/srv/art")


@pytest.mark.parametrize(
    "name",
    [
        "CHECKPOINT_MAX_AGE_DAYS",
        "CHECKPOINT_CLEANUP_INTERVAL_HOURS",
        "KTRDR_ORPHAN_TIMEOUT_SECONDS",
        "KTRDR_HEARTBEAT_INTERVAL_SECONDS",
        "KTRDR_CHECKPOINT_EPOCH_INTERVAL",
        "KTRDR_CHECKPOINT_TIME_INTERVAL_SECONDS",
    ],
)
@pytest.mark.parametrize("value", ["0", "-1"])
def test_zero_or_negative_interval_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_non_number_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_HEARTBEAT_INTERVAL_SECONDS", "soon")
    with pytest.raises(SettingsError, match="KTRDR_HEARTBEAT_INTERVAL_SECONDS"):
        load_settings()


@pytest.mark.parametrize(
    ("given", "libpq"),
    [
        ("postgresql://user@host:5432/db", "postgresql://user@host:5432/db"),
        ("postgresql+psycopg://user:pw@host/db", "postgresql://user:pw@host/db"),
        ("postgres://user@host/db", "postgresql://user@host/db"),
    ],
)
def test_database_url_forms(given: str, libpq: str) -> None:
    assert normalize_database_url(given) == libpq
    assert sqlalchemy_url(libpq).startswith("postgresql+psycopg://")


def test_bad_database_url_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_DATABASE_URL", "mysql://x@y/z")
    with pytest.raises(SettingsError, match="KTRDR_DATABASE_URL"):
        load_settings()


def test_url_helpers() -> None:
    url = "postgresql://postgres:secret@/postgres?host=/tmp/sock"
    assert with_database(url, "other") == "postgresql://postgres:secret@/other?host=/tmp/sock"
    assert "secret" not in redact(url)


def test_fault_08_a_heartbeat_interval_above_a_third_of_the_timeout_is_refused() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(heartbeat_interval_seconds=4, orphan_timeout_seconds=10)
    message = str(refused.value)
    assert "KTRDR_HEARTBEAT_INTERVAL_SECONDS (4)" in message
    assert "KTRDR_ORPHAN_TIMEOUT_SECONDS (10)" in message
    assert load_settings(heartbeat_interval_seconds=3, orphan_timeout_seconds=9)
