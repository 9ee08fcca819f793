"""Settings, read from the environment (docs/design.md §9).

The three ``CHECKPOINT_*`` names are the reference system's and stay
unprefixed; their ``KTRDR_``-prefixed spellings are accepted too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ktrdr import ADMIN_TOKEN_FILE, client_token

_SQLALCHEMY_SCHEMES = ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


def _env(name: str, *, prefixed_alias: bool = False) -> AliasChoices:
    if prefixed_alias:
        return AliasChoices(name, f"KTRDR_{name}")
    return AliasChoices(name)


def normalize_database_url(url: str) -> str:
    """Return the libpq form of a PostgreSQL URL given in libpq or SQLAlchemy form."""
    url = url.strip()
    for scheme in _SQLALCHEMY_SCHEMES:
        if url.startswith(scheme):
            return "postgresql://" + url[len(scheme) :]
    if not url.startswith("postgresql://"):
        raise ValueError("must start with postgresql:// (or postgresql+psycopg://)")
    return url


def with_database(url: str, dbname: str) -> str:
    """The same server URL, naming another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def sqlalchemy_url(libpq_url: str) -> str:
    return "postgresql+psycopg://" + libpq_url[len("postgresql://") :]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    database_url: str | None = Field(None, validation_alias=_env("KTRDR_DATABASE_URL"))
    data_dir: Path = Field(Path.home() / ".ktrdr", validation_alias=_env("KTRDR_DATA_DIR"))
    checkpoint_artifacts_path: Path | None = Field(
        None, validation_alias=_env("CHECKPOINT_ARTIFACTS_PATH", prefixed_alias=True)
    )
    checkpoint_max_age_days: float = Field(
        30, gt=0, validation_alias=_env("CHECKPOINT_MAX_AGE_DAYS", prefixed_alias=True)
    )
    checkpoint_cleanup_interval_hours: float = Field(
        24, gt=0, validation_alias=_env("CHECKPOINT_CLEANUP_INTERVAL_HOURS", prefixed_alias=True)
    )
    orphan_timeout_seconds: float = Field(
        60, gt=0, validation_alias=_env("KTRDR_ORPHAN_TIMEOUT_SECONDS")
    )
    heartbeat_interval_seconds: float = Field(
        10, gt=0, validation_alias=_env("KTRDR_HEARTBEAT_INTERVAL_SECONDS")
    )
    checkpoint_epoch_interval: int = Field(
        10, gt=0, validation_alias=_env("KTRDR_CHECKPOINT_EPOCH_INTERVAL")
    )
    checkpoint_time_interval_seconds: float = Field(
        300, gt=0, validation_alias=_env("KTRDR_CHECKPOINT_TIME_INTERVAL_SECONDS")
    )
    checkpoint_keep: int = Field(2, gt=0, validation_alias=_env("KTRDR_CHECKPOINT_KEEP"))
    shutdown_timeout_seconds: float = Field(
        25, gt=0, validation_alias=_env("KTRDR_SHUTDOWN_TIMEOUT_SECONDS")
    )
    api_url: str = Field("http://127.0.0.1:8000", validation_alias=_env("KTRDR_API_URL"))
    api_token: str | None = Field(None, validation_alias=_env("KTRDR_API_TOKEN"))
    """What clients send as their bearer token; else $KTRDR_DATA_DIR/admin-token."""
    auth: Literal["on", "off"] = Field("on", validation_alias=_env("KTRDR_AUTH"))
    """off: no token is asked for; refused unless the server listens on loopback only."""
    data_roots: str | None = Field(None, validation_alias=_env("KTRDR_DATA_ROOTS"))
    """Where workloads may read data files (os.pathsep-separated); default $KTRDR_DATA_DIR/data."""
    data_file_max_bytes: int = Field(
        1 << 30, gt=0, validation_alias=_env("KTRDR_DATA_FILE_MAX_BYTES")
    )
    progress_event_interval_seconds: float = Field(
        5, ge=0, le=3600, validation_alias=_env("KTRDR_PROGRESS_EVENT_INTERVAL_SECONDS")
    )
    """At most one ProgressReported event per operation this often; the live value is fresh."""
    # The retry policy of operations created without one (Temporal's names).
    retry_max_attempts: int = Field(
        5, ge=1, le=1000, validation_alias=_env("KTRDR_RETRY_MAX_ATTEMPTS")
    )
    retry_initial_interval_seconds: float = Field(
        1, gt=0, validation_alias=_env("KTRDR_RETRY_INITIAL_INTERVAL_SECONDS")
    )
    retry_backoff_coefficient: float = Field(
        2, ge=1, le=100, validation_alias=_env("KTRDR_RETRY_BACKOFF_COEFFICIENT")
    )
    retry_maximum_interval_seconds: float = Field(
        60, gt=0, validation_alias=_env("KTRDR_RETRY_MAXIMUM_INTERVAL_SECONDS")
    )

    @field_validator("database_url")
    @classmethod
    def _normalize_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return normalize_database_url(value)

    @model_validator(mode="after")
    def _heartbeats_fit_the_timeout(self) -> Self:
        # Three heartbeats per timeout: one lost or late beat never orphans a live worker.
        if self.heartbeat_interval_seconds > self.orphan_timeout_seconds / 3:
            raise ValueError(
                f"KTRDR_HEARTBEAT_INTERVAL_SECONDS ({self.heartbeat_interval_seconds:g}) must be"
                " at most a third of KTRDR_ORPHAN_TIMEOUT_SECONDS"
                f" ({self.orphan_timeout_seconds:g}); lower the first or raise the second"
            )
        return self

    @property
    def artifacts_path(self) -> Path:
        return self.checkpoint_artifacts_path or self.data_dir / "artifacts"

    @property
    def auth_enabled(self) -> bool:
        return self.auth == "on"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / ADMIN_TOKEN_FILE

    @property
    def data_root_paths(self) -> tuple[Path, ...]:
        if not self.data_roots:
            return (self.data_dir / "data",)
        return tuple(Path(p) for p in self.data_roots.split(os.pathsep) if p.strip())

    def client_token(self) -> str | None:
        """The bearer token clients send: KTRDR_API_TOKEN, else the local admin token."""
        return client_token(self.api_token, self.data_dir)


def env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    assert isinstance(alias, AliasChoices)
    return str(alias.choices[0])


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; SettingsError names any invalid variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            if not error["loc"]:  # a rule between settings: its message names them
                problems.append(str(error["msg"]).removeprefix("Value error, "))
                continue
            field = str(error["loc"][0])
            name = env_name(field) if field in Settings.model_fields else field
            problems.append(f"{name}: {error['msg']} (got {error.get('input')!r})")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
