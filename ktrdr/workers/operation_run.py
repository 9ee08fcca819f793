"""One claimed operation on a worker: its fenced writes and the context its workload sees."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ktrdr.workers.api_client import (
    FENCED_CODES,
    ApiClient,
    BackendUnavailable,
    Claim,
    OperationAbandoned,
    Refused,
    WriteAnswer,
    cancellation_requested,
)
from ktrdr.workers.checkpointing import CheckpointWriteFailed, CheckpointWriter, SavedCheckpoint
from ktrdr.workers.json_floats import json_safe
from ktrdr.workers.link import Backoff, Link
from ktrdr.workers.workload import Capture, CheckpointType, StopReason

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 1.0
METRICS_FLUSH_SECONDS = 2.0
METRICS_BATCH = 200
"""Metrics points go out this often, in batches of at most this many (and before each
checkpoint and the end)."""


class OperationRun:
    """Owns the fencing token (attempt) of one claim and sends every write with it."""

    def __init__(
        self,
        claim: Claim,
        *,
        worker_id: str,
        api: ApiClient,
        link: Link,
        shutting_down: Callable[[], bool],
    ) -> None:
        self.claim = claim
        self.worker_id = worker_id
        self._api = api
        self._link = link
        self._shutting_down = shutting_down
        self.next_sequence = claim.next_checkpoint_sequence
        self.cancel_requested = threading.Event()
        self.abandoned = threading.Event()
        self.abandon_reason = ""

    @property
    def operation_id(self) -> str:
        return self.claim.operation_id

    def abandon(self, reason: str) -> None:
        if not self.abandoned.is_set():
            log.warning("abandoning operation %s: %s", self.operation_id, reason)
            self.abandon_reason = reason
            self.abandoned.set()

    def _body(self, **fields: Any) -> dict[str, Any]:
        return {"worker_id": self.worker_id, "attempt": self.claim.attempt, **fields}

    def send(self, what: str, **fields: Any) -> WriteAnswer:
        """A fenced write that must land: retried while the backend is away, never sent
        once the lease ran out until a re-registration confirmed the attempt."""
        backoff = Backoff()
        while True:
            if self.abandoned.is_set():
                raise OperationAbandoned(self.abandon_reason)
            if not self._link.lease_valid():
                self._link.wait_for_lease(timeout=1.0)
                continue
            try:
                answer = self._api.write(self.operation_id, what, self._body(**fields))
            except BackendUnavailable as exc:
                log.info("backend unavailable for %s (%s); retrying", what, exc)
                self._link.lost()
                time.sleep(backoff.next())
                continue
            except Refused as exc:
                if exc.code in FENCED_CODES:
                    self.abandon(exc.detail)
                    raise OperationAbandoned(exc.detail) from None
                raise
            self._link.ok()
            if cancellation_requested(answer):
                self.cancel_requested.set()
            return answer

    def try_send(self, what: str, **fields: Any) -> None:
        """A best-effort write (progress): skipped while the link is down or the lease ran
        out, and never fatal to the run — whatever goes wrong is logged and dropped."""
        if self._link.needs_registration or not self._link.lease_valid():
            return
        try:
            answer = self._api.write(self.operation_id, what, self._body(**json_safe(fields)))
        except BackendUnavailable:
            self._link.lost()
            return
        except Refused as exc:
            if exc.code in FENCED_CODES:
                self.abandon(exc.detail)
            else:
                log.warning("%s refused: %s", what, exc)
            return
        except Exception:
            log.exception("%s of %s not sent", what, self.operation_id)
            return
        self._link.ok()
        if cancellation_requested(answer):
            self.cancel_requested.set()

    def commit(self, saved: SavedCheckpoint) -> None:
        """The checkpoint's files are durable: now the event (the commit). The backend
        decides which older ones retention deletes (each deletion is an event)."""
        self.send(
            "checkpoints",
            sequence=saved.sequence,
            checkpoint_type=str(saved.checkpoint_type),
            state=saved.state,
            artifacts_path=saved.artifacts_path,
            artifacts=[f.model_dump(mode="json") for f in saved.manifest.files],
            artifacts_size_bytes=saved.manifest.total_size,
        )
        log.info(
            "checkpointed %s: #%s %s", self.operation_id, saved.sequence, saved.checkpoint_type
        )

    def save_failed(self, failure: CheckpointWriteFailed) -> None:
        log.error("checkpoint %s of %s not saved: %s", failure.sequence, self.operation_id, failure)
        # Never committed: the backend still expects this sequence next.
        self.next_sequence = min(self.next_sequence, failure.sequence)
        if failure.abandoned:
            return  # this worker no longer owns the run: there is nobody to tell
        self.try_send(
            "checkpoint-failures",
            sequence=failure.sequence,
            checkpoint_type=str(failure.checkpoint_type),
            message=str(failure)[:2000],
        )

    def stop_reason(self) -> StopReason | None:
        if self.abandoned.is_set():
            raise OperationAbandoned(self.abandon_reason)
        if self._shutting_down():
            return StopReason.SHUTDOWN
        if self.cancel_requested.is_set():
            return StopReason.CANCELLATION
        return None


class RunContext:
    """The WorkloadContext a workload sees while it runs on this worker."""

    def __init__(self, run: OperationRun, writer: CheckpointWriter) -> None:
        self._run = run
        self._writer = writer
        self._last_progress = float("-inf")
        self._points: dict[str, list[dict[str, Any]]] = {}
        self._first_unsent = 0.0

    def progress(
        self, percentage: float, current_step: str, message: str = "", **details: Any
    ) -> None:
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_INTERVAL_SECONDS and percentage < 100:
            return
        self._last_progress = now
        self._run.try_send(
            "progress",
            percentage=max(0.0, min(100.0, percentage)),
            current_step=current_step,
            message=message,
            details=details,
        )

    def record(self, series: str, point: dict[str, Any]) -> None:
        if not any(self._points.values()):
            self._first_unsent = time.monotonic()
        points = self._points.setdefault(series, [])
        points.append(json_safe(point))
        if (
            len(points) >= METRICS_BATCH
            or time.monotonic() - self._first_unsent >= METRICS_FLUSH_SECONDS
        ):
            self.flush_metrics()

    def flush_metrics(self) -> None:
        """Send what was recorded; a write that must land, like a checkpoint's."""
        for series, points in self._points.items():
            if points:
                self._run.send("metrics", series=series, points=points, write_id=str(uuid.uuid4()))
        self._points = {}

    def now(self) -> float:
        return time.monotonic()

    def stop_requested(self) -> StopReason | None:
        return self._run.stop_reason()

    def checkpoint(self, checkpoint_type: CheckpointType, capture: Capture) -> None:
        if self._run.abandoned.is_set():
            raise OperationAbandoned(self._run.abandon_reason)
        self.flush_metrics()  # the log has every point up to the checkpoint before it
        self._writer.flush()  # a failed earlier save gives its sequence back first
        sequence = self._run.next_sequence
        self._run.next_sequence += 1
        self._writer.save(
            checkpoint_type,
            capture,
            sequence=sequence,
            background=checkpoint_type == CheckpointType.PERIODIC,
        )
