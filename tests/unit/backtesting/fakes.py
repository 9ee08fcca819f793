"""A WorkloadContext that does for real what the runtime does, without a backend.

Captures are round-tripped through strict JSON (no NaN) and their files are
written under a directory by the capture's own writers; periodic writers run
later (at the next checkpoint or ``flush``), as the runtime's background save
does. The clock is fake, and a stop can be requested after a number of bars.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ktrdr.workers.workload import Capture, CheckpointType, ResumePoint, StopReason


@dataclass(frozen=True)
class Saved:
    sequence: int
    checkpoint_type: CheckpointType
    state: dict[str, Any]
    files: dict[str, Path]

    def resume_point(self) -> ResumePoint:
        return ResumePoint(self.sequence, self.checkpoint_type, self.state, self.files)


class FakeContext:
    def __init__(
        self,
        root: Path,
        *,
        stop_after: int | None = None,
        stop_reason: StopReason = StopReason.CANCELLATION,
        seconds_per_call: float = 0.0,
        first_sequence: int = 1,
    ) -> None:
        """``stop_after``: request a stop once the workload went through that many bar
        boundaries of this run (it asks at every boundary, before each bar)."""
        self.root = root
        self.checkpoints: list[Saved] = []
        self.reports: list[dict[str, Any]] = []
        self.series: dict[str, list[dict[str, Any]]] = {}
        self._stop_after = stop_after
        self._stop_reason = stop_reason
        self._seconds_per_call = seconds_per_call
        self._clock = 0.0
        self._boundaries = 0
        self._sequence = first_sequence
        self._pending: list[tuple[Capture, Path]] = []

    def progress(
        self, percentage: float, current_step: str, message: str = "", **details: Any
    ) -> None:
        self.reports.append(
            {"percentage": percentage, "current_step": current_step, "message": message, **details}
        )

    def record(self, series: str, point: dict[str, Any]) -> None:
        json.dumps(point, allow_nan=False)
        self.series.setdefault(series, []).append(point)

    def now(self) -> float:
        self._clock += self._seconds_per_call
        return self._clock

    def stop_requested(self) -> StopReason | None:
        boundary = self._boundaries
        self._boundaries += 1
        if self._stop_after is not None and boundary >= self._stop_after:
            return self._stop_reason
        return None

    def checkpoint(self, checkpoint_type: CheckpointType, capture: Capture) -> None:
        self.flush()
        folder = self.root / f"checkpoint-{self._sequence:04d}"
        folder.mkdir(parents=True)
        state = json.loads(json.dumps(capture.state, allow_nan=False))
        files = {name: folder / name for name in capture.files}
        self.checkpoints.append(Saved(self._sequence, checkpoint_type, state, files))
        self._sequence += 1
        self._pending.append((capture, folder))
        if checkpoint_type != CheckpointType.PERIODIC:
            self.flush()

    def flush(self) -> None:
        for capture, folder in self._pending:
            for name, write in capture.files.items():
                with (folder / name).open("wb") as out:
                    write(out)
        self._pending.clear()

    @property
    def last(self) -> Saved:
        self.flush()
        return self.checkpoints[-1]

    def of_type(self, checkpoint_type: CheckpointType) -> list[Saved]:
        self.flush()
        return [saved for saved in self.checkpoints if saved.checkpoint_type == checkpoint_type]
