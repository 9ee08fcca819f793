"""A WorkloadContext for tests: real checkpoints (CheckpointWriter + ArtifactStore), no backend.

Commits keep what a CheckpointSaved event would: the state round-tripped through
strict JSON, and the manifest. The clock is fake and advances one second per
progress report (one report per safe point).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ktrdr.artifacts import ArtifactStore, Manifest
from ktrdr.workers.checkpointing import CheckpointWriter, SavedCheckpoint
from ktrdr.workers.workload import Capture, CheckpointType, ResumePoint, StopReason


@dataclass
class Journal:
    """The committed checkpoints of one operation, across runs (the event log's part)."""

    store: ArtifactStore
    operation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    committed: list[SavedCheckpoint] = field(default_factory=list)
    epochs: dict[int, dict[str, Any]] = field(default_factory=dict)
    """The ``epochs`` metrics recorded across runs, by epoch (a replayed one replaces)."""

    def next_sequence(self) -> int:
        return max((saved.sequence for saved in self.committed), default=0) + 1

    def commit(self, saved: SavedCheckpoint) -> None:
        state = json.loads(json.dumps(saved.state, allow_nan=False))
        manifest = Manifest.model_validate_json(saved.manifest.model_dump_json())
        self.committed.append(
            SavedCheckpoint(
                saved.operation_id,
                saved.sequence,
                saved.checkpoint_type,
                state,
                manifest,
                saved.artifacts_path,
                saved.write_seconds,
            )
        )

    def checkpoint(self, sequence: int) -> SavedCheckpoint:
        return next(saved for saved in self.committed if saved.sequence == sequence)

    def latest(self) -> SavedCheckpoint:
        return max(self.committed, key=lambda saved: saved.sequence)

    def resume_point(self, sequence: int | None = None) -> ResumePoint:
        saved = self.latest() if sequence is None else self.checkpoint(sequence)
        files = self.store.load(self.operation_id, saved.sequence, saved.manifest)
        return ResumePoint(saved.sequence, saved.checkpoint_type, saved.state, files)

    def files(self, sequence: int) -> Mapping[str, Path]:
        return self.store.load(self.operation_id, sequence, self.checkpoint(sequence).manifest)


class FakeContext:
    """Implements WorkloadContext for real; ``stop_at`` stops at that safe point (1-based)."""

    def __init__(
        self,
        journal: Journal,
        *,
        stop_at: int | None = None,
        stop_reason: StopReason = StopReason.CANCELLATION,
        seconds_per_step: float = 1.0,
    ) -> None:
        self.journal = journal
        self.clock = 0.0
        self.seconds_per_step = seconds_per_step
        self.safe_points = 0
        self.stop_at = stop_at
        self.stop_reason = stop_reason
        self.reports: list[dict[str, Any]] = []
        self.series: dict[str, list[dict[str, Any]]] = {}
        self.writer = CheckpointWriter(journal.store, journal.operation_id, journal.commit)
        self.sequence = journal.next_sequence()

    def progress(
        self, percentage: float, current_step: str, message: str = "", **details: Any
    ) -> None:
        json.dumps(details, allow_nan=False)
        self.reports.append({"percentage": percentage, "step": current_step, **details})
        self.clock += self.seconds_per_step

    def record(self, series: str, point: dict[str, Any]) -> None:
        json.dumps(point, allow_nan=False)
        self.series.setdefault(series, []).append(point)
        if series == "epochs":
            self.journal.epochs[point["epoch"]] = point

    def now(self) -> float:
        return self.clock

    def stop_requested(self) -> StopReason | None:
        self.safe_points += 1
        if self.stop_at is not None and self.safe_points >= self.stop_at:
            return self.stop_reason
        return None

    def checkpoint(self, checkpoint_type: CheckpointType, capture: Capture) -> None:
        sequence, self.sequence = self.sequence, self.sequence + 1
        background = checkpoint_type is CheckpointType.PERIODIC
        self.writer.save(checkpoint_type, capture, sequence=sequence, background=background)

    def close(self) -> None:
        self.writer.close()
