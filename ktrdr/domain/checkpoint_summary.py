"""A checkpoint in a few words, for lists and the CLI: "epoch 12", "bar 5400", "phase training"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_UNITS: Mapping[str, tuple[str, str]] = {
    "training": ("epoch", "epoch"),
    "backtesting": ("bar_index", "bar"),
    "agent_research": ("phase", "phase"),
}

Position = int | str | None
"""Where a run's checkpoint is: its epoch, bar or phase (None when its state does not say)."""


def checkpoint_position(operation_type: str, state: Mapping[str, Any]) -> Position:
    key = _UNITS.get(operation_type, ("", ""))[0]
    value = state.get(key) if key else None
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        return None
    return value


def describe_position(operation_type: str, position: Position) -> str:
    """``position`` in words, or "" when there is none."""
    if position is None:
        return ""
    return f"{_UNITS[operation_type][1]} {position}"


def checkpoint_summary(operation_type: str, state: Mapping[str, Any]) -> str:
    """Where the checkpoint is, or "" when its state does not say."""
    return describe_position(operation_type, checkpoint_position(operation_type, state))
