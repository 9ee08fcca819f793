"""GET /health, and the problem+json body of every error answer."""

from __future__ import annotations

from typing import Literal

from ktrdr.contracts.base import Contract, JsonObject


class DatabaseHealth(Contract):
    reachable: bool


class FencingHealth(Contract):
    stale_attempts_refused: int
    """Writes from stale attempts this backend refused since it started."""


class Health(Contract):
    """200 with "ok", or 503 with "unavailable" while the database cannot be reached."""

    status: Literal["ok", "unavailable"]
    version: str
    database: DatabaseHealth
    processors: dict[str, Literal["active", "standby"]]
    """Each projection and background processor: active here, or standing by."""
    fencing: FencingHealth


class Problem(Contract):
    """An error (RFC 9457, application/problem+json); ``code`` is stable, match on it."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    errors: list[JsonObject] | None = None
    """Validation errors: each names the ``key`` and ``source`` at fault and a ``message``."""
