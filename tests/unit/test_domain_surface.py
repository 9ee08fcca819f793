"""The domain's public surface: what others import, and the error codes the API shows."""

from __future__ import annotations

import ktrdr.domain as domain
from ktrdr.domain import DomainError

CODES = {
    "OperationNotFound": "OPERATION_NOT_FOUND",
    "CheckpointNotFound": "CHECKPOINT_NOT_FOUND",
    "OperationNotResumable": "OPERATION_NOT_RESUMABLE",
    "StaleAttempt": "STALE_ATTEMPT",
    "OperationNotClaimable": "OPERATION_NOT_CLAIMABLE",
    "OperationNotCancellable": "OPERATION_NOT_CANCELLABLE",
    "OperationFinished": "OPERATION_FINISHED",
    "OperationBusy": "OPERATION_BUSY",
    "OperationAlreadyExists": "OPERATION_ALREADY_EXISTS",
    "ValidationError": "VALIDATION_ERROR",
    "WorkerNotFound": "WORKER_NOT_FOUND",
    "UnknownEventType": "UNKNOWN_EVENT_TYPE",
    "CorruptHistory": "CORRUPT_HISTORY",
    "CheckpointSequenceMismatch": "CHECKPOINT_SEQUENCE_MISMATCH",
    "CheckpointNotResumable": "CHECKPOINT_NOT_RESUMABLE",
    "ConflictingWrite": "CONFLICTING_WRITE",
    "DeviceChangeRefused": "DEVICE_CHANGE_REFUSED",
}


def test_every_exported_name_exists() -> None:
    assert sorted(domain.__all__) == sorted(set(domain.__all__))
    assert all(hasattr(domain, name) for name in domain.__all__)


def test_every_domain_error_is_exported_with_its_stable_code() -> None:
    exported = {
        name: getattr(domain, name)
        for name in domain.__all__
        if isinstance(getattr(domain, name), type)
        and issubclass(getattr(domain, name), DomainError)
    }
    exported.pop("DomainError")
    assert {name: error.code for name, error in exported.items()} == CODES


def test_workload_reexports_the_domain_enums() -> None:
    from ktrdr.workers import workload

    assert workload.CheckpointType is domain.CheckpointType
    assert workload.StopReason is domain.StopReason
