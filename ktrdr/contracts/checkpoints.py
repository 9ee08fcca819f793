"""Answers about checkpoints: the latest per operation, its history, stats and cleanup."""

from __future__ import annotations

from ktrdr.contracts.base import Contract, JsonObject, Moment, OperationIdText
from ktrdr.domain import CheckpointType, OperationType


class ArtifactView(Contract):
    name: str
    size: int
    sha256: str


class CheckpointListed(Contract):
    """A checkpoint as listed: without its state."""

    operation_id: OperationIdText
    sequence: int
    operation_type: OperationType
    checkpoint_type: CheckpointType
    artifacts_path: str | None
    artifacts: list[ArtifactView]
    state_size_bytes: int
    artifacts_size_bytes: int
    total_size_bytes: int
    created_at: Moment
    resumable: bool
    """Whether its artifact files are there, intact, to resume from."""


class CheckpointView(CheckpointListed):
    """A checkpoint with the state its worker saved."""

    state: JsonObject


class CheckpointHistoryItem(CheckpointView):
    attempt: int
    worker_id: str | None


class CheckpointPage(Contract):
    items: list[CheckpointListed]
    total: int


class CheckpointHistory(Contract):
    operation_id: OperationIdText
    items: list[CheckpointHistoryItem]
    total: int


class CheckpointStats(Contract):
    """Every live checkpoint: counts, the sizes their events recorded, the bytes of their
    rows in the database and of the artifact files on disk."""

    total_checkpoints: int
    total_size_bytes: int
    state_size_bytes: int
    artifacts_size_bytes: int
    oldest_checkpoint: Moment | None
    by_type: dict[str, int]
    operations: int
    database_bytes: int
    artifacts_on_disk_bytes: int


class CleanupReport(Contract):
    checkpoints_deleted: int
    bytes_freed: int
    orphan_artifacts_removed: int
    skipped_busy: int


class CheckpointsDeleted(Contract):
    operation_id: OperationIdText
    deleted_sequences: list[int]
