"""A pure world for the agent research rules: operations folded with the domain's own
``decide``, a manager that reacts until it waits, and workers played by the test.

Every command takes one second of the world's clock, so progress is never throttled
and event times are ordered as they would be.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ktrdr.domain import (
    MANAGER_ID,
    CheckpointSaved,
    CheckpointType,
    ClaimOperation,
    CompleteOperation,
    ConfirmCancellation,
    CreateOperation,
    FailOperation,
    OperationCommand,
    OperationState,
    OperationStatus,
    Reaction,
    RequestCancellation,
    ResumeOperation,
    SaveCheckpoint,
    decide,
    fold,
    next_reaction,
    research_checkpoint,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
RESEARCH = "5d3c2b1a-0f9e-4d8c-b7a6-112233445566"
WORKER = "worker-1"
TRAINED = {
    "model_sha256": "ab" * 32,
    "epochs_completed": 4,
    "final_val_loss": 0.69,
    "best_val_loss": 0.68,
    "history": [],
}
GOOD_BACKTEST = {
    "total_return": 0.12,
    "sharpe_ratio": 1.4,
    "max_drawdown": 0.08,
    "win_rate": 0.55,
    "total_trades": 12,
    "final_portfolio_value": 112_000.0,
    "total_bars": 1500,
    "trades_sha256": "cd" * 32,
    "equity_sha256": "ef" * 32,
}


@dataclass
class World:
    operations: dict[str, OperationState] = field(default_factory=dict)
    checkpoint_states: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    """Each CheckpointSaved's state, as the checkpoint read model keeps it."""
    seconds: int = 0
    reactions: list[Reaction] = field(default_factory=list)

    def now(self) -> datetime:
        self.seconds += 1
        return T0 + timedelta(seconds=self.seconds)

    def apply(self, command: OperationCommand) -> list[Any]:
        state = self.operations.get(command.operation_id)
        events = decide(state, command)
        for event in events:
            if isinstance(event, CheckpointSaved):
                self.checkpoint_states[(event.operation_id, event.sequence)] = dict(event.state)
        after = fold(events, state)
        if after is not None:
            self.operations[command.operation_id] = after
        return events

    # The research and the user ---------------------------------------------------------

    def start(self, params: Mapping[str, Any] | None = None, **fields: Any) -> OperationState:
        create = CreateOperation(
            operation_id=RESEARCH,
            at=self.now(),
            operation_type="agent_research",
            params=dict({"seed": 7} if params is None else params),
            **fields,
        )
        self.apply(create)
        return self.research

    @property
    def research(self) -> OperationState:
        return self.operations[RESEARCH]

    def children(self) -> list[OperationState]:
        found = [o for o in self.operations.values() if o.parent_operation_id == RESEARCH]
        return sorted(found, key=lambda o: o.created_at)

    def child(self, operation_type: str) -> OperationState:
        return [c for c in self.children() if c.operation_type == operation_type][-1]

    def research_state(self) -> dict[str, Any] | None:
        """The state of the checkpoint the research stands on (the manager reads its row)."""
        sequence = research_checkpoint(self.research)
        return None if sequence is None else self.checkpoint_states[(RESEARCH, sequence)]

    def next_reaction(self, at: datetime | None = None) -> Reaction | None:
        return next_reaction(
            self.research, self.research_state(), self.children(), at or self.now()
        )

    def manager_runs(self) -> list[Reaction]:
        """React until the manager waits (as the handler does); returns what it did."""
        done = []
        while (reaction := self.next_reaction()) is not None:
            done.append(reaction)
            if not self.apply(reaction.command):
                break
        self.reactions += done
        return done

    def cancel(self, operation_id: str = RESEARCH) -> None:
        self.apply(RequestCancellation(operation_id=operation_id, at=self.now()))

    def resume(self, operation_id: str = RESEARCH, sequence: int | None = None) -> None:
        self.apply(
            ResumeOperation(operation_id=operation_id, at=self.now(), checkpoint_sequence=sequence)
        )

    # A worker ------------------------------------------------------------------------------

    def claim(self, operation_id: str, worker_id: str = WORKER) -> OperationState:
        self.apply(ClaimOperation(operation_id=operation_id, at=self.now(), worker_id=worker_id))
        return self.operations[operation_id]

    def checkpoint(self, operation_id: str, kind: str = "periodic", **state: Any) -> None:
        op = self.operations[operation_id]
        assert op.worker_id is not None
        self.apply(
            SaveCheckpoint(
                operation_id=operation_id,
                at=self.now(),
                worker_id=op.worker_id,
                attempt=op.attempt,
                checkpoint_type=CheckpointType(kind),
                state=state,
            )
        )

    def complete(self, operation_id: str, result: Mapping[str, Any]) -> None:
        op = self.operations[operation_id]
        assert op.worker_id is not None
        self.apply(
            CompleteOperation(
                operation_id=operation_id,
                at=self.now(),
                worker_id=op.worker_id,
                attempt=op.attempt,
                result=dict(result),
            )
        )

    def stopped(self, operation_id: str, reason: str = "cancellation") -> None:
        op = self.operations[operation_id]
        assert op.worker_id is not None
        self.apply(
            ConfirmCancellation(
                operation_id=operation_id,
                at=self.now(),
                worker_id=op.worker_id,
                attempt=op.attempt,
                reason=reason,
            )
        )

    def fail(self, operation_id: str, message: str = "loss is NaN") -> None:
        op = self.operations[operation_id]
        self.apply(
            FailOperation(
                operation_id=operation_id,
                at=self.now(),
                worker_id=op.worker_id,
                attempt=op.attempt,
                message=message,
            )
        )

    def train(self, epochs: int = 4) -> str:
        """Play the training worker to the end; returns the training child's id."""
        training = self.child("training").operation_id
        self.claim(training)
        for epoch in range(1, epochs + 1):
            self.checkpoint(training, epoch=epoch)
        self.complete(training, {**TRAINED, "epochs_completed": epochs})
        return training

    def backtest(self, result: Mapping[str, Any] = GOOD_BACKTEST) -> str:
        backtest = self.child("backtesting").operation_id
        self.claim(backtest)
        self.checkpoint(backtest, bar_index=500)
        self.complete(backtest, result)
        return backtest


def statuses(world: World) -> dict[str, OperationStatus]:
    return {op.operation_type: op.status for op in world.children()}


def manager_attempt(world: World) -> tuple[OperationStatus, str | None, int]:
    research = world.research
    assert research.worker_id in (None, MANAGER_ID)
    return research.status, research.worker_id, research.attempt
