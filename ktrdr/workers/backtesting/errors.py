"""Why a backtest refuses to resume from a checkpoint."""

from __future__ import annotations

from ktrdr.workers.workload import RunCannotSucceed

__all__ = ["CheckpointMismatch"]


class CheckpointMismatch(ValueError, RunCannotSucceed):
    """The checkpoint does not belong to this backtest (other bars, params, model or curve)."""
