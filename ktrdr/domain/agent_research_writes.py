"""The commands the agent research manager issues, each as a Reaction with its basis.

The manager is the research operation's worker: its claim gives it an attempt (the
fencing token), and every later write of the research carries that attempt, so once
the research is stopped, resumed and claimed again, a write decided before is refused.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ktrdr.domain.agent_research import ResearchPhase, ResearchState
from ktrdr.domain.operation import CheckpointInfo, OperationState
from ktrdr.domain.operation_commands import (
    AcknowledgeClaim,
    ClaimOperation,
    CompleteOperation,
    ConfirmCancellation,
    FailOperation,
    OperationCommand,
    ReportProgress,
    SaveCheckpoint,
)
from ktrdr.domain.vocabulary import CheckpointType, FailureReason, StopReason

MANAGER_ID = "agent-research-manager"
"""The worker id the manager claims research operations with, in every backend replica."""

NAMESPACE = uuid.UUID("3b0a8d52-6c1e-4f7a-9e55-2d4c8b1f7a60")


@dataclass(frozen=True)
class Reaction:
    command: OperationCommand
    basis: str
    """The operation and version this was decided from, and what it does."""

    @property
    def key(self) -> uuid.UUID:
        """The idempotency key: a reaction decided twice from one state appends once."""
        return uuid.uuid5(NAMESPACE, self.basis)


def on(target: OperationState, what: str, command: OperationCommand) -> Reaction:
    return Reaction(command, f"{target.operation_id}@{target.version}/{what}")


def own_latest_checkpoint(research: OperationState) -> CheckpointInfo | None:
    """The newest checkpoint this attempt saved."""
    own = [c for c in research.checkpoints.values() if c.attempt == research.attempt]
    return max(own, key=lambda c: c.sequence, default=None)


@dataclass(frozen=True)
class ResearchWrites:
    """The manager's writes to one research, decided from ``research`` at ``at``."""

    research: OperationState
    at: datetime

    @property
    def _fenced(self) -> dict[str, Any]:
        return {
            "operation_id": self.research.operation_id,
            "at": self.at,
            "worker_id": MANAGER_ID,
            "attempt": self.research.attempt,
        }

    def claim(self) -> Reaction:
        claim = ClaimOperation(
            operation_id=self.research.operation_id, at=self.at, worker_id=MANAGER_ID
        )
        return on(self.research, "claim", claim)

    def acknowledge(self) -> Reaction:
        return on(self.research, "acknowledge", AcknowledgeClaim(**self._fenced))

    def checkpoint(self, kind: CheckpointType, state: ResearchState) -> Reaction:
        save = SaveCheckpoint(**self._fenced, checkpoint_type=kind, state=state.as_json())
        return on(self.research, f"checkpoint:{kind}", save)

    def stop(self, state: ResearchState, kind: CheckpointType, message: str = "") -> Reaction:
        """Checkpoint first, then stop: a stopped research always has a checkpoint to resume."""
        saved = own_latest_checkpoint(self.research)
        if saved is None or saved.checkpoint_type != kind:
            return self.checkpoint(kind, state)
        if kind == CheckpointType.FAILURE:
            return self.fail(message)
        confirm = ConfirmCancellation(**self._fenced, reason=StopReason.CANCELLATION)
        return on(self.research, "cancelled", confirm)

    def fail(self, message: str) -> Reaction:
        fail = FailOperation(**self._fenced, reason=FailureReason.ERROR, message=message)
        return on(self.research, "fail", fail)

    def report(
        self, percentage: float, phase: ResearchPhase, message: str, **details: Any
    ) -> Reaction | None:
        """Progress, unless it already shows exactly this."""
        last = self.research.progress
        if (
            last is not None
            and last.attempt == self.research.attempt
            and (round(last.percentage, 1), last.current_step, last.message)
            == (round(percentage, 1), phase, message)
        ):
            return None
        report = ReportProgress(
            **self._fenced,
            percentage=round(percentage, 1),
            current_step=str(phase),
            message=message,
            details={"phase": str(phase), **details},
        )
        return on(self.research, "progress", report)

    def complete(self, result: dict[str, Any]) -> Reaction:
        complete = CompleteOperation(**self._fenced, result=result)
        return on(self.research, "complete", complete)
