"""Maintenance runs the backend records, so that their schedule survives restarts."""

from __future__ import annotations

from pydantic import NonNegativeInt, PositiveFloat

from ktrdr.domain.values import Message, UtcDatetime

CHECKPOINT_CLEANUP_STREAM = "maintenance-checkpoint_cleanup"


class CheckpointCleanupRan(Message):
    """One checkpoint cleanup run and what it did; the next scheduled run counts from it."""

    at: UtcDatetime
    max_age_days: PositiveFloat
    checkpoints_deleted: NonNegativeInt
    bytes_freed: NonNegativeInt
    orphan_artifacts_removed: NonNegativeInt
    skipped_busy: NonNegativeInt
