"""Which of an operation's checkpoints retention may delete while it lives."""

from __future__ import annotations

from ktrdr.domain.operation import OperationState
from ktrdr.domain.vocabulary import OperationStatus


def superseded(state: OperationState, keep: int) -> list[int]:
    """The live checkpoints beyond the newest ``keep``, less any a resume may still read.

    Nothing while the operation is resuming (its worker reads one) or completed
    (completion cleanup decides); while it runs, the checkpoint its attempt resumed
    from stays until that attempt ends.
    """
    if keep < 1:
        raise ValueError(f"keep must be one or more, got {keep}")
    if state.status in (OperationStatus.RESUMING, OperationStatus.COMPLETED):
        return []
    protected = {state.resumed_from} if state.status == OperationStatus.RUNNING else set()
    older = sorted(state.checkpoints)[:-keep]
    return [sequence for sequence in older if sequence not in protected]
