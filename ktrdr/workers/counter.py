"""A small deterministic workload for testing the runtime: count, checkpoint, resume.

A worker runs it as its operation type when ``KTRDR_TEST_HOOKS`` says ``workload=counter``
(``ktrdr.workers.test_hooks``), so the resilience rules are tested in seconds, not epochs.
It reads the type's own params, validated like any others: ``epochs`` (training) or
``bars`` (backtesting) are its steps, their checkpoint cadence is its own.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from ktrdr.domain import CheckpointPolicy
from ktrdr.domain.params.backtesting import parse_params as parse_backtest_params
from ktrdr.domain.params.training import parse_params as parse_training_params
from ktrdr.workers.test_hooks import TestHooks
from ktrdr.workers.workload import (
    Capture,
    CheckpointType,
    OperationStopped,
    ResumePoint,
    WorkloadContext,
)

_DEFAULT_CHECKPOINT_EVERY = 5
_DEFAULT_CHECKPOINT_INTERVAL_SECONDS = 300.0


@dataclass(frozen=True)
class CounterParams:
    steps: int
    checkpoint_every: int
    checkpoint_interval_seconds: float

    @classmethod
    def of(cls, operation_type: str, params: Mapping[str, Any]) -> CounterParams:
        if operation_type == "backtesting":
            backtest = parse_backtest_params(params)
            steps = backtest.bars or 20
            every: int | None = backtest.checkpoint_every_bars
            interval = backtest.checkpoint_interval_seconds
        else:
            training = parse_training_params(params)
            steps, every = training.epochs, training.checkpoint_every_epochs
            interval = training.checkpoint_interval_seconds
        return cls(
            steps,
            every or _DEFAULT_CHECKPOINT_EVERY,
            interval or _DEFAULT_CHECKPOINT_INTERVAL_SECONDS,
        )


def _digest(values: list[int]) -> str:
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()


class CounterWorkload:
    def __init__(self, operation_type: str = "training", hooks: TestHooks | None = None) -> None:
        self.operation_type = operation_type
        self.hooks = hooks or TestHooks()

    def run(
        self, params: Mapping[str, Any], resume: ResumePoint | None, ctx: WorkloadContext
    ) -> dict[str, Any]:
        p = CounterParams.of(self.operation_type, params)
        fail_at, step_seconds = self.hooks.fail_at_step, self.hooks.step_seconds
        step, values = 0, []
        if resume is not None:
            step = int(resume.state["step"])
            values = json.loads(resume.files["values.json"].read_text())
        policy = CheckpointPolicy(p.checkpoint_every, p.checkpoint_interval_seconds)
        policy.start(ctx.now(), step)

        def capture() -> Capture:
            frozen = list(values)

            def write(handle: IO[bytes]) -> None:
                handle.write(json.dumps(frozen).encode())

            return Capture({"step": len(frozen), "total": sum(frozen)}, {"values.json": write})

        while step < p.steps:
            reason = ctx.stop_requested()
            if reason is not None:
                ctx.checkpoint(CheckpointType(reason.value), capture())
                raise OperationStopped(reason)
            if fail_at is not None and step == fail_at:
                ctx.checkpoint(CheckpointType.FAILURE, capture())
                raise RuntimeError(f"counter failed at step {step} as asked")
            time.sleep(step_seconds)
            values.append(step * step % 97)
            step += 1
            ctx.progress(100.0 * step / p.steps, f"step {step}/{p.steps}")
            if step < p.steps and policy.due(step, ctx.now()):
                ctx.checkpoint(CheckpointType.PERIODIC, capture())
                policy.saved(step, ctx.now())
        return {"steps": step, "total": sum(values), "digest": _digest(values)}
