"""What the agent research manager does next, decided from the research and its children.

``next_reaction`` looks at a research operation and its children as they are now
and returns the one command that moves the research on, or None while it waits
for a child. The manager runs it and asks again. Every reaction changes the state
it was decided from, so asking again (after a crash, a replayed event, a second
replica) never repeats one; a reaction's ``basis`` names the state it was decided
from, so that a race between two managers appends its events only once.

The manager is the research operation's worker: it claims it (an attempt, the
fencing token), checkpoints it after each phase, reports the phase as progress,
and completes, fails or stops it. Children are ordinary training and backtesting
operations with ``parent_operation_id`` set, run by the workers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ktrdr.domain.agent_research import (
    METRIC_KEYS,
    Design,
    ResearchParams,
    ResearchPhase,
    ResearchState,
    assess,
    design,
    parse_research_params,
)
from ktrdr.domain.agent_research_writes import (
    MANAGER_ID,
    NAMESPACE,
    Reaction,
    ResearchWrites,
    on,
    own_latest_checkpoint,
)
from ktrdr.domain.errors import ValidationError
from ktrdr.domain.operation import OperationState
from ktrdr.domain.operation_commands import (
    CreateOperation,
    RequestCancellation,
    ResumeOperation,
)
from ktrdr.domain.vocabulary import CheckpointType, OperationStatus, OperationType

_CHILD_TYPES = {
    ResearchPhase.TRAINING: OperationType.TRAINING,
    ResearchPhase.BACKTESTING: OperationType.BACKTESTING,
}
_NEXT_PHASE = {
    ResearchPhase.TRAINING: ResearchPhase.BACKTESTING,
    ResearchPhase.BACKTESTING: ResearchPhase.ASSESSING,
}
# The share of the research's progress bar each phase covers.
_SPANS = {
    ResearchPhase.DESIGNING: (0.0, 5.0),
    ResearchPhase.TRAINING: (5.0, 60.0),
    ResearchPhase.BACKTESTING: (60.0, 95.0),
    ResearchPhase.ASSESSING: (95.0, 100.0),
    ResearchPhase.COMPLETED: (100.0, 100.0),
}
_TRAINING_KEYS = ("model_sha256", "epochs_completed", "final_val_loss", "best_val_loss")
_BUSY = (OperationStatus.PENDING, OperationStatus.RESUMING, OperationStatus.RUNNING)


def child_operation_id(research_id: str, phase: ResearchPhase, generation: int) -> str:
    """Deterministic, so two managers can never create a phase's child twice."""
    return str(uuid.uuid5(NAMESPACE, f"{research_id}/{phase}/{generation}"))


def research_checkpoint(research: OperationState) -> int | None:
    """The checkpoint that says where the research stands: its own latest, else the one
    it resumed from (None: it has not designed anything yet)."""
    own = own_latest_checkpoint(research)
    if own is not None:
        return own.sequence
    if research.resumed_from is not None and research.resumed_from in research.checkpoints:
        return research.resumed_from
    return None


def current_research(checkpoint_state: Mapping[str, Any] | None) -> ResearchState | None:
    """Where the research stands, from the state of its ``research_checkpoint``."""
    return None if checkpoint_state is None else ResearchState.model_validate(checkpoint_state)


def next_reaction(
    research: OperationState,
    checkpoint_state: Mapping[str, Any] | None,
    children: Sequence[OperationState],
    at: datetime,
) -> Reaction | None:
    """The one command that moves ``research`` on now; None while it waits for a child.

    ``checkpoint_state`` is the state of its ``research_checkpoint``; ``children`` are
    its child operations, oldest first.
    """
    writes = ResearchWrites(research, at)
    if research.status in (OperationStatus.PENDING, OperationStatus.RESUMING):
        return writes.claim()
    if research.status != OperationStatus.RUNNING or research.worker_id != MANAGER_ID:
        return None
    if research.acknowledged_at is None:
        return writes.acknowledge()
    try:
        params = parse_research_params(research.params)
    except ValidationError as error:
        return writes.fail(error.detail)
    current = current_research(checkpoint_state)
    return _Decision(research, current, tuple(children), params, design(params), writes).next()


@dataclass(frozen=True)
class _Decision:
    research: OperationState
    current: ResearchState | None
    children: tuple[OperationState, ...]
    params: ResearchParams
    design: Design
    writes: ResearchWrites

    @property
    def at(self) -> datetime:
        return self.writes.at

    def next(self) -> Reaction | None:
        state = self.current or ResearchState(phase=ResearchPhase.DESIGNING)
        match state.phase:
            case ResearchPhase.DESIGNING:
                return self._designing(state)
            case ResearchPhase.TRAINING | ResearchPhase.BACKTESTING:
                return self._child_phase(state)
            case ResearchPhase.ASSESSING | ResearchPhase.COMPLETED:
                return self._assessing(state)

    # Phases ---------------------------------------------------------------------------

    def _designing(self, state: ResearchState) -> Reaction:
        if self.research.cancellation_requested:
            return self.writes.stop(state, CheckpointType.CANCELLATION)
        designed = ResearchState(
            phase=ResearchPhase.TRAINING,
            strategy_name=self.design.strategy_name,
            strategy=self.design.strategy,
            training_operation_id=self._planned_child_id(ResearchPhase.TRAINING),
        )
        return self.writes.checkpoint(CheckpointType.PERIODIC, designed)

    def _child_phase(self, state: ResearchState) -> Reaction | None:
        child = self._child(state.phase)
        seen = _observed(state, child)
        if self.research.cancellation_requested:
            return self._cancel_through(seen, child)
        if child is None:
            return self._create_child(state.phase)
        if child.next_retry_at is not None:
            return self._progress(seen.phase, child)  # its retry is scheduled: wait for it
        match child.status:
            case OperationStatus.PENDING | OperationStatus.RESUMING | OperationStatus.RUNNING:
                return self._progress(seen.phase, child)
            case OperationStatus.COMPLETED:
                return self.writes.checkpoint(CheckpointType.PERIODIC, self._advanced(seen))
            case OperationStatus.CANCELLED:
                # Not asked for by the research: its worker shut down (or a user stopped
                # the child alone); the research carries on.
                return self._restart(child)
            case OperationStatus.FAILED:
                if self._stopped_before_this_attempt(child):
                    return self._restart(child)
                return self.writes.stop(seen, CheckpointType.FAILURE, _failure_message(child))

    def _assessing(self, state: ResearchState) -> Reaction:
        if self.research.cancellation_requested:
            return self.writes.stop(state, CheckpointType.CANCELLATION)
        backtest = self._child(ResearchPhase.BACKTESTING)
        if backtest is None or backtest.result is None:
            message = "assessing found no completed backtest to judge"
            return self.writes.stop(state, CheckpointType.FAILURE, message)
        result = self._result(backtest)
        verdict = f"{result['verdict']}: {'; '.join(result['reasons'])}"
        shown = self.writes.report(100.0, ResearchPhase.COMPLETED, verdict)
        return shown or self.writes.complete(result)

    # Children ---------------------------------------------------------------------------

    def _of_phase(self, phase: ResearchPhase) -> list[OperationState]:
        kind = _CHILD_TYPES[phase]
        return [c for c in self.children if c.operation_type == kind]

    def _child(self, phase: ResearchPhase) -> OperationState | None:
        """The phase's current child: the newest, as only a lost one is ever replaced."""
        of_phase = self._of_phase(phase)
        return of_phase[-1] if of_phase else None

    def _planned_child_id(self, phase: ResearchPhase) -> str:
        child = self._child(phase)
        return child.operation_id if child else child_operation_id(self._id, phase, 0)

    def _create_child(self, phase: ResearchPhase) -> Reaction:
        child_id = child_operation_id(self._id, phase, len(self._of_phase(phase)))
        params = dict(self.design.training)
        if phase == ResearchPhase.BACKTESTING:
            params = dict(self.design.backtesting)
            trained = self._child(ResearchPhase.TRAINING)
            if self.design.trades_the_model and trained is not None:
                params["model_operation_id"] = trained.operation_id
        create = CreateOperation(
            operation_id=child_id,
            at=self.at,
            operation_type=_CHILD_TYPES[phase],
            params=params,
            parent_operation_id=self._id,
            keep_checkpoints=self.research.keep_checkpoints,
            # A child interrupted by infrastructure is retried under the research's policy.
            retry_policy=self.research.retry_policy,
        )
        return Reaction(create, f"{child_id}@0/create")

    def _restart(self, child: OperationState) -> Reaction:
        """Resume a stopped child from its own checkpoint; one without any is replaced."""
        if not child.resumable:
            return self._create_child(self._phase_of(child))
        resume = ResumeOperation(operation_id=child.operation_id, at=self.at)
        return on(child, "resume", resume)

    def _cancel_through(self, seen: ResearchState, child: OperationState | None) -> Reaction | None:
        if child is None or child.status not in _BUSY:
            return self.writes.stop(seen, CheckpointType.CANCELLATION)
        if child.cancellation_requested:
            return None  # its worker is saving a cancellation checkpoint
        cancel = RequestCancellation(
            operation_id=child.operation_id,
            at=self.at,
            reason=f"its agent_research operation {self._id} was cancelled",
        )
        return on(child, "cancel", cancel)

    def _stopped_before_this_attempt(self, child: OperationState) -> bool:
        # A child that stopped before this attempt's claim is what the research resumes
        # from; one that stopped since has stopped the research.
        stopped, claimed = child.completed_at, self.research.claimed_at
        return stopped is not None and claimed is not None and stopped <= claimed

    def _phase_of(self, child: OperationState) -> ResearchPhase:
        return next(phase for phase, kind in _CHILD_TYPES.items() if kind == child.operation_type)

    # The research's state and result ----------------------------------------------------

    @property
    def _id(self) -> str:
        return self.research.operation_id

    def _advanced(self, seen: ResearchState) -> ResearchState:
        after = _NEXT_PHASE[seen.phase]
        moved = seen.model_copy(update={"phase": after})
        if after == ResearchPhase.BACKTESTING:
            planned = self._planned_child_id(ResearchPhase.BACKTESTING)
            moved = moved.model_copy(update={"backtest_operation_id": planned})
        return moved

    def _progress(self, phase: ResearchPhase, child: OperationState) -> Reaction | None:
        start, end = _SPANS[phase]
        done = child.progress.percentage if child.progress else 0.0
        where = f", {child.progress.current_step}" if child.progress else ""
        message = f"{child.operation_type} {child.status}{where}"
        percentage = start + (end - start) * done / 100.0
        return self.writes.report(percentage, phase, message, child_operation_id=child.operation_id)

    def _result(self, backtest: OperationState) -> dict[str, Any]:
        assert backtest.result is not None
        metrics = {k: backtest.result[k] for k in METRIC_KEYS if k in backtest.result}
        verdict = assess(metrics, self.params.thresholds())
        trained = self._child(ResearchPhase.TRAINING)
        training = dict(trained.result or {}) if trained else {}
        return {
            "strategy": self.design.strategy,
            "strategy_name": self.design.strategy_name,
            "training_operation_id": trained.operation_id if trained else None,
            "backtest_operation_id": backtest.operation_id,
            "metrics": metrics,
            "training": {k: training[k] for k in _TRAINING_KEYS if k in training},
            "verdict": verdict.decision,
            "reasons": list(verdict.reasons),
            "thresholds": self.params.thresholds(),
        }


def _observed(state: ResearchState, child: OperationState | None) -> ResearchState:
    """``state`` with what its phase's child shows now (its id, training's epoch)."""
    if child is None:
        return state
    if child.operation_type == OperationType.BACKTESTING:
        return state.model_copy(update={"backtest_operation_id": child.operation_id})
    epoch = _epoch(child)
    if epoch is None:
        epoch = state.training_checkpoint_epoch
    return state.model_copy(
        update={"training_operation_id": child.operation_id, "training_checkpoint_epoch": epoch}
    )


def _epoch(training: OperationState) -> int | None:
    if training.result is not None and isinstance(training.result.get("epochs_completed"), int):
        return int(training.result["epochs_completed"])
    latest = training.latest_checkpoint
    epoch = latest.position if latest else None
    return epoch if isinstance(epoch, int) else None


def _failure_message(child: OperationState) -> str:
    reason, detail = (child.error.reason, child.error.message) if child.error else ("?", "")
    return f"{child.operation_type} operation {child.operation_id} failed ({reason}): {detail}"
