"""Why the domain refuses a command. Each error has a stable ``code`` for the API.

Every refusal is raised before any event is decided, so a refused command never
changes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar


class DomainError(Exception):
    """A refused command: ``code`` is stable (API error code), ``detail`` is for humans."""

    code: ClassVar[str] = "DOMAIN_ERROR"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ValidationError(DomainError):
    """A malformed message or argument. ``errors`` lists each problem (loc, msg, type)."""

    code = "VALIDATION_ERROR"

    def __init__(self, detail: str, errors: Sequence[Mapping[str, object]] = ()) -> None:
        super().__init__(detail)
        self.errors = [dict(error) for error in errors]


class OperationNotFound(DomainError):
    code = "OPERATION_NOT_FOUND"

    def __init__(self, operation_id: str) -> None:
        super().__init__(f"operation {operation_id} does not exist; check the id")
        self.operation_id = operation_id


class OperationAlreadyExists(DomainError):
    code = "OPERATION_ALREADY_EXISTS"

    def __init__(self, operation_id: str) -> None:
        super().__init__(f"operation {operation_id} already exists; create it with a new id")
        self.operation_id = operation_id


class CheckpointNotFound(DomainError):
    code = "CHECKPOINT_NOT_FOUND"

    def __init__(
        self, operation_id: str, sequences: Iterable[int] = (), live: Iterable[int] = ()
    ) -> None:
        missing = sorted(sequences)
        available = sorted(live)
        if not missing:
            what = f"operation {operation_id} has no checkpoint"
        else:
            what = f"operation {operation_id} has no live checkpoint {_listed(missing)}"
        hint = (
            f"live checkpoints: {_listed(available)}"
            if available
            else "start a new operation instead"
        )
        super().__init__(f"{what}; {hint}")
        self.operation_id = operation_id
        self.sequences = missing
        self.live = available


class OperationNotResumable(DomainError):
    code = "OPERATION_NOT_RESUMABLE"

    _hints: ClassVar[dict[str, str]] = {
        "pending": "it has not started yet; a worker will pick it up",
        "resuming": "it is already resuming; wait for a worker to claim it",
        "running": "only cancelled or failed operations resume; cancel it first",
        "completed": "it finished; start a new operation to run it again",
    }

    def __init__(self, operation_id: str, status: str) -> None:
        hint = self._hints.get(status, "only cancelled or failed operations resume")
        super().__init__(f"operation {operation_id} is {status}; {hint}")
        self.operation_id = operation_id
        self.status = status


class StaleAttempt(DomainError):
    """A write from a claim that is no longer current: the worker must stop working on it."""

    code = "STALE_ATTEMPT"

    def __init__(
        self, operation_id: str, attempt: int | None, current_attempt: int, status: str
    ) -> None:
        super().__init__(
            f"attempt {attempt} of operation {operation_id} is no longer current "
            f"(the operation is {status} on attempt {current_attempt}); stop working on it"
        )
        self.operation_id = operation_id
        self.attempt = attempt
        self.current_attempt = current_attempt
        self.status = status


class OperationNotClaimable(DomainError):
    code = "OPERATION_NOT_CLAIMABLE"

    def __init__(self, operation_id: str, status: str) -> None:
        super().__init__(
            f"operation {operation_id} is {status}; only pending or resuming operations "
            "can be claimed, claim another one"
        )
        self.operation_id = operation_id
        self.status = status


class OperationNotCancellable(DomainError):
    code = "OPERATION_NOT_CANCELLABLE"

    def __init__(self, operation_id: str, status: str) -> None:
        super().__init__(
            f"operation {operation_id} is already {status}; there is nothing to cancel"
        )
        self.operation_id = operation_id
        self.status = status


class OperationFinished(DomainError):
    """A backend failure (no attempt given) for an operation that has already ended."""

    code = "OPERATION_FINISHED"

    def __init__(self, operation_id: str, status: str) -> None:
        super().__init__(f"operation {operation_id} is already {status}; there is nothing to fail")
        self.operation_id = operation_id
        self.status = status


class OperationBusy(DomainError):
    code = "OPERATION_BUSY"

    def __init__(self, operation_id: str, status: str) -> None:
        super().__init__(
            f"operation {operation_id} is {status}; cancel it first or wait until it ends"
        )
        self.operation_id = operation_id
        self.status = status


class WorkerNotFound(DomainError):
    code = "WORKER_NOT_FOUND"

    def __init__(self, worker_id: str) -> None:
        super().__init__(f"worker {worker_id} is not registered; it must register first")
        self.worker_id = worker_id


class UnknownEventType(DomainError):
    """A stored event this code cannot read: an unknown type or a newer schema version."""

    code = "UNKNOWN_EVENT_TYPE"

    def __init__(self, event_type: str, schema_version: int) -> None:
        super().__init__(
            f"cannot read {event_type} v{schema_version}; upgrade ktrdr or add an upcaster"
        )
        self.event_type = event_type
        self.schema_version = schema_version


class CorruptHistory(DomainError):
    """A stream whose events cannot be folded (an event before its stream was created)."""

    code = "CORRUPT_HISTORY"


def _listed(numbers: Sequence[int]) -> str:
    return ", ".join(str(n) for n in numbers)


class CheckpointSequenceMismatch(DomainError):
    code = "CHECKPOINT_SEQUENCE_MISMATCH"

    def __init__(self, operation_id: str, sequence: int, expected: int) -> None:
        super().__init__(
            f"operation {operation_id} expects checkpoint {expected}, not {sequence};"
            " another writer saved one first — reload the operation"
        )
        self.sequence = sequence
        self.expected = expected


class CheckpointNotResumable(DomainError):
    """A checkpoint that existed but cannot be resumed from (deleted, or its files gone)."""

    code = "CHECKPOINT_NOT_RESUMABLE"

    def __init__(
        self, operation_id: str, sequence: int, why: str, resumable: Iterable[int]
    ) -> None:
        available = sorted(resumable)
        hint = (
            f"resume from one of {_listed(available)}, or leave the checkpoint out for the newest"
            if available
            else "no checkpoint of it can be resumed; start a new operation"
        )
        super().__init__(
            f"checkpoint {sequence} of operation {operation_id} cannot be resumed: {why}; {hint}"
        )
        self.sequence = sequence
        self.resumable = available


class ConflictingWrite(DomainError):
    """A worker write for an attempt that already recorded a different one."""

    code = "CONFLICTING_WRITE"

    def __init__(self, operation_id: str, attempt: int, what: str) -> None:
        super().__init__(
            f"attempt {attempt} of operation {operation_id} already recorded a different"
            f" {what}; a repeated write must carry the same content"
        )
        self.attempt = attempt


class DeviceChangeRefused(DomainError):
    """A resume that would run on another kind of device than its checkpoint was made on."""

    code = "DEVICE_CHANGE_REFUSED"

    def __init__(self, operation_id: str, sequence: int, saved_on: str, run_on: str) -> None:
        super().__init__(
            f"checkpoint {sequence} of operation {operation_id} was made on {saved_on}; a"
            f" resume on {run_on} cannot be bit-exact. Resume with allow_device_change"
            " (--allow-device-change) to accept an inexact result, or resume on"
            f" {saved_on}"
        )
        self.sequence = sequence
        self.saved_on = saved_on
        self.run_on = run_on
