"""A checkpoint in a few words, for lists and the CLI: "epoch 12", "bar 5400", "phase training"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_UNITS: Mapping[str, tuple[str, str]] = {
    "training": ("epoch", "epoch"),
    "backtesting": ("bar_index", "bar"),
    "agent_research": ("phase", "phase"),
}


def checkpoint_summary(operation_type: str, state: Mapping[str, Any]) -> str:
    """Where the checkpoint is, or "" when its state does not say."""
    key, label = _UNITS.get(operation_type, ("", ""))
    value = state.get(key) if key else None
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        return ""
    return f"{label} {value}"
