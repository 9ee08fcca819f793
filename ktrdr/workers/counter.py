"""A small deterministic workload for testing the runtime: count, checkpoint, resume.

It runs as any operation type when a worker is started with ``--workload counter``
(a hidden option), so the resilience rules are tested in seconds, not epochs.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field

from ktrdr.domain import CheckpointPolicy
from ktrdr.workers.workload import (
    Capture,
    CheckpointType,
    OperationStopped,
    ResumePoint,
    WorkloadContext,
)


class CounterParams(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    steps: int = Field(20, ge=1, le=1_000_000)
    step_seconds: float = Field(0.05, ge=0, le=60)
    checkpoint_every: int = Field(5, ge=1)
    checkpoint_interval_seconds: float = Field(300, gt=0)
    fail_at_step: int | None = None


def _digest(values: list[int]) -> str:
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()


class CounterWorkload:
    def __init__(self, operation_type: str = "training") -> None:
        self.operation_type = operation_type

    def run(
        self, params: Mapping[str, Any], resume: ResumePoint | None, ctx: WorkloadContext
    ) -> dict[str, Any]:
        p = CounterParams.model_validate(dict(params))
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
            if p.fail_at_step is not None and step == p.fail_at_step:
                ctx.checkpoint(CheckpointType.FAILURE, capture())
                raise RuntimeError(f"counter failed at step {step} as asked")
            time.sleep(p.step_seconds)
            values.append(step * step % 97)
            step += 1
            ctx.progress(100.0 * step / p.steps, f"step {step}/{p.steps}")
            if step < p.steps and policy.due(step, ctx.now()):
                ctx.checkpoint(CheckpointType.PERIODIC, capture())
                policy.saved(step, ctx.now())
        return {"steps": step, "total": sum(values), "digest": _digest(values)}
