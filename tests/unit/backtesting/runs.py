"""Running the backtesting workload under a FakeContext: to the end, or until a stop."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from ktrdr.workers.backtesting import BacktestingWorkload
from ktrdr.workers.workload import OperationStopped, ResumePoint, StopReason
from tests.unit.backtesting.fakes import FakeContext, Saved

_folders = itertools.count()


class Runner:
    def __init__(self, root: Path, workload: BacktestingWorkload | None = None) -> None:
        self.root = root
        self.workload = workload or BacktestingWorkload()

    def context(self, **options: Any) -> FakeContext:
        return FakeContext(self.root / f"run-{next(_folders)}", **options)

    def to_end(
        self, params: dict[str, Any], resume: ResumePoint | None = None, **options: Any
    ) -> tuple[dict[str, Any], FakeContext]:
        ctx = self.context(**options)
        result = self.workload.run(params, resume, ctx)
        ctx.flush()
        return result, ctx

    def until_stop(
        self,
        params: dict[str, Any],
        after: int,
        resume: ResumePoint | None = None,
        reason: StopReason = StopReason.CANCELLATION,
    ) -> Saved:
        """Stop after ``after`` more bars; the stop checkpoint."""
        ctx = self.context(stop_after=after, stop_reason=reason)
        with pytest.raises(OperationStopped) as stopped:
            self.workload.run(params, resume, ctx)
        assert stopped.value.reason == reason
        return ctx.last
