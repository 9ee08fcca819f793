"""Drives a backtest through its bars under a worker's context.

At each bar boundary: a stop request saves a checkpoint of its type and raises
OperationStopped; a due periodic checkpoint is handed to the runtime. An error
in a bar saves a ``failure`` checkpoint of the last boundary (the engine commits
a bar only once it went through) and propagates.
"""

from __future__ import annotations

from ktrdr.domain import CheckpointPolicy
from ktrdr.workers.backtesting.engine import Backtest
from ktrdr.workers.backtesting.snapshot import Origin, capture
from ktrdr.workers.json_floats import json_safe_object
from ktrdr.workers.workload import CheckpointType, OperationStopped, WorkloadContext

__all__ = ["PROGRESS_REPORTS", "drive"]

PROGRESS_REPORTS = 100
"""Progress is reported about this many times a run (every 1 % of the bars)."""


def drive(
    backtest: Backtest, ctx: WorkloadContext, policy: CheckpointPolicy, origin: Origin
) -> None:
    """Run ``backtest`` from its ``bar_index`` to the end."""
    try:
        _walk(backtest, ctx, policy, origin)
    except OperationStopped:
        raise
    except Exception as error:
        _save_failure(backtest, ctx, origin, error)
        raise


def _walk(
    backtest: Backtest, ctx: WorkloadContext, policy: CheckpointPolicy, origin: Origin
) -> None:
    every = max(1, backtest.total_bars // PROGRESS_REPORTS)
    policy.start(ctx.now(), backtest.bar_index)
    while not backtest.finished:
        reason = ctx.stop_requested()
        if reason is not None:
            ctx.checkpoint(CheckpointType(reason.value), capture(backtest, origin))
            raise OperationStopped(reason)
        backtest.step()
        done = backtest.bar_index
        if done % every == 0 or backtest.finished:
            _report(backtest, ctx)
        if not backtest.finished and policy.due(done, ctx.now()):
            ctx.checkpoint(CheckpointType.PERIODIC, capture(backtest, origin))
            policy.saved(done, ctx.now())


def _report(backtest: Backtest, ctx: WorkloadContext) -> None:
    done, total = backtest.bar_index, backtest.total_bars
    # The equity curve for plots: about a hundred samples a run, in the log.
    sample = {"bar_index": done, "portfolio_value": backtest.portfolio_value}
    ctx.record("equity", json_safe_object(sample))
    ctx.progress(
        100.0 * done / total,
        f"bar {done} of {total}",
        f"portfolio {backtest.portfolio_value:,.2f}, {len(backtest.trades)} trades",
        bar_index=done,
        total_bars=total,
        portfolio_value=backtest.portfolio_value,
        trades=len(backtest.trades),
    )


def _save_failure(
    backtest: Backtest, ctx: WorkloadContext, origin: Origin, error: Exception
) -> None:
    try:
        ctx.checkpoint(CheckpointType.FAILURE, capture(backtest, origin))
    except Exception as checkpoint_error:
        error.add_note(f"the failure checkpoint could not be saved either: {checkpoint_error!r}")
