"""The interface between the worker runtime and a workload (training, backtesting, …).

The runtime claims an operation, then calls ``workload.run(params, resume, ctx)``.
The workload does its work in units (epochs, bars), reports progress, asks its
checkpoint policy whether a checkpoint is due, and hands the runtime a
*capture*: a consistent in-memory copy of its state. The runtime writes the
capture's files in the background and commits the checkpoint afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from ktrdr.domain import CheckpointType, StopReason

__all__ = [
    "Capture",
    "CheckpointType",
    "OperationStopped",
    "ResumePoint",
    "RunCannotSucceed",
    "StopReason",
    "Workload",
    "WorkloadContext",
    "Writer",
]

Writer = Callable[[IO[bytes]], None]
"""Writes one artifact file. It runs later, in another thread, so it must only
use data the capture already copied (never live tensors or live lists)."""


@dataclass(frozen=True)
class Capture:
    """A consistent snapshot of a workload at a safe point (a unit boundary)."""

    state: dict[str, Any]
    """JSON-serialisable (no NaN/Inf: encode them); goes into the CheckpointSaved event."""
    files: Mapping[str, Writer] = field(default_factory=dict)
    """Artifact name -> writer; written under <artifacts>/<operation>/<sequence>/."""


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a resumed operation starts from, its artifacts already verified."""

    sequence: int
    checkpoint_type: CheckpointType
    state: dict[str, Any]
    files: Mapping[str, Path]


class RunCannotSucceed(Exception):
    """An error no retry can mend (an incompatible checkpoint): the run fails as invalid."""


class OperationStopped(Exception):
    """Raised by a workload after it saved its cancellation or shutdown checkpoint."""

    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


class WorkloadContext(Protocol):
    def progress(
        self, percentage: float, current_step: str, message: str = "", **details: Any
    ) -> None:
        """Report progress; the runtime throttles what it sends (at most 1/s)."""

    def record(self, series: str, point: dict[str, Any]) -> None:
        """A point of a metrics series (a training epoch's losses, a backtest's equity
        sample). It goes to the log, never into checkpoint state; every point recorded
        before a checkpoint is committed before it."""

    def now(self) -> float:
        """Monotonic seconds, for the checkpoint policy (a fake clock in tests)."""

    def stop_requested(self) -> StopReason | None:
        """A cancel request or a SIGTERM arrived: checkpoint at the next safe point and stop."""

    def checkpoint(self, checkpoint_type: CheckpointType, capture: Capture) -> None:
        """Save a checkpoint from a capture. Periodic saves may return before the
        files are written (at most one save in flight); the others are durable
        when this returns."""


class Workload(Protocol):
    operation_type: str

    def run(
        self, params: Mapping[str, Any], resume: ResumePoint | None, ctx: WorkloadContext
    ) -> dict[str, Any]:
        """Run (or continue from ``resume``) to the end and return the result.

        On ``ctx.stop_requested()`` save a checkpoint of that type and raise
        OperationStopped. On an error, save a ``failure`` checkpoint of the last
        consistent state when possible, then let the error propagate. Resuming
        from any checkpoint must end exactly as an uninterrupted run would.
        """
