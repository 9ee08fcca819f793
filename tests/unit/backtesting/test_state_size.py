"""The checkpoint state of a backtest stays small however many bars and trades it has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ktrdr.domain import json_size
from tests.unit.backtesting.fakes import FakeContext
from tests.unit.backtesting.runs import Runner

# The close against the mean of the last two closes: the side flips about every other bar.
STRATEGY = {"name": "ma_crossover", "fast": 1, "slow": 2}
STATE_LIMIT_BYTES = 64 * 1024


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path)


def params(bars: int) -> dict[str, Any]:
    return {"bars": bars, "seed": 3, "strategy": STRATEGY, "checkpoint_every_bars": bars // 4}


def state_sizes(ctx: FakeContext) -> list[int]:
    return [json_size(saved.state) for saved in ctx.checkpoints]


def test_fault_06_backtest_state_stays_small_whatever_the_run_length(runner: Runner) -> None:
    _, short = runner.to_end(params(2_000))
    expected, long = runner.to_end(params(60_000))
    resumed, _ = runner.to_end(params(60_000), long.last.resume_point())

    assert long.last.state["trades"]["count"] > 20_000
    assert len(long.checkpoints) == len(short.checkpoints) == 3
    assert max(state_sizes(long)) < STATE_LIMIT_BYTES
    assert max(state_sizes(long)) < 1.5 * min(state_sizes(short))
    assert resumed == expected
