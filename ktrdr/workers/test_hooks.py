"""Hooks for the project's own tests, never operation params nor shown in ``--help``.

A worker reads them from one environment variable, so no client can switch them on:
``KTRDR_TEST_HOOKS="workload=counter,step_seconds=0.1,fail_at_epoch=3"``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from ktrdr.config import SettingsError
from ktrdr.domain.values import refusal

ENV = "KTRDR_TEST_HOOKS"


class TestHooks(BaseModel):
    __test__ = False  # not a pytest class

    model_config = ConfigDict(frozen=True, extra="forbid")

    workload: Literal["counter"] | None = None
    """``counter``: run the counter workload (seconds, not epochs) as the worker's type."""
    step_seconds: float = Field(0.05, ge=0, le=60)
    """How long each of the counter's steps takes."""
    fail_at_epoch: int | None = Field(None, ge=0)
    """Training raises inside the first batch of this epoch (after a failure checkpoint)."""
    fail_at_bar: int | None = Field(None, ge=0)
    """A backtest raises in the middle of this bar."""
    fail_at_step: int | None = Field(None, ge=0)
    """The counter raises before this step."""


NONE = TestHooks()


def from_environment(environ: Mapping[str, str] = os.environ) -> TestHooks:
    raw = environ.get(ENV, "").strip()
    if not raw:
        return NONE
    pairs = [item.partition("=") for item in raw.split(",") if item.strip()]
    bad = [key for key, sep, _ in pairs if not sep]
    if bad:
        raise SettingsError(f"{ENV}: {', '.join(bad)} is not KEY=VALUE")
    try:
        return TestHooks.model_validate({key.strip(): value.strip() for key, _, value in pairs})
    except pydantic.ValidationError as exc:
        raise SettingsError(f"{ENV}: {refusal('test hooks', exc).detail}") from None
