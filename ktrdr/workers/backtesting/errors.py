"""Why a backtest refuses to resume from a checkpoint."""

from __future__ import annotations

__all__ = ["CheckpointMismatch"]


class CheckpointMismatch(ValueError):
    """The checkpoint does not belong to this backtest (other bars, params, model or curve)."""
