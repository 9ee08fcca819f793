"""Saving a workload's captures: files first (in the background if asked), then the commit.

The commit (in the runtime: POST the CheckpointSaved event) is called only after the
artifact set is durable, so a crash at any moment leaves either a committed checkpoint
with complete files or no checkpoint at all. At most one save is in flight.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ktrdr.artifacts import ArtifactStore, Manifest, relative_path
from ktrdr.config import Settings
from ktrdr.workers.api_client import OperationAbandoned
from ktrdr.workers.workload import Capture, CheckpointType

__all__ = [
    "SLOW_WRITE_ENV",
    "CheckpointWriteFailed",
    "CheckpointWriter",
    "SavedCheckpoint",
    "open_artifact_store",
]

SLOW_WRITE_ENV = "KTRDR_TEST_SLOW_ARTIFACT_WRITE_SECONDS"


@dataclass(frozen=True)
class SavedCheckpoint:
    """A checkpoint whose files are durable: what the commit turns into CheckpointSaved."""

    operation_id: str
    sequence: int
    checkpoint_type: CheckpointType
    state: dict[str, Any]
    manifest: Manifest
    artifacts_path: str
    write_seconds: float


class CheckpointWriteFailed(Exception):
    """A save (its files or its commit) failed; the checkpoint was not committed."""

    code = "CHECKPOINT_WRITE_FAILED"

    def __init__(
        self, sequence: int, checkpoint_type: CheckpointType, cause: BaseException
    ) -> None:
        super().__init__(f"checkpoint {sequence} was not saved: {_reason(cause)}")
        self.sequence = sequence
        self.checkpoint_type = checkpoint_type
        self.abandoned = isinstance(cause, OperationAbandoned)
        """The commit was refused because another attempt owns the operation now."""


Commit = Callable[[SavedCheckpoint], None]
OnError = Callable[[CheckpointWriteFailed], None]


class CheckpointWriter:
    """Writes captures through an ArtifactStore and commits them, one save at a time.

    A failed background save goes to ``on_error`` when given; otherwise it is raised
    (as CheckpointWriteFailed) by the next ``save`` or ``flush``.
    """

    def __init__(
        self,
        store: ArtifactStore,
        operation_id: str,
        commit: Commit,
        *,
        on_error: OnError | None = None,
        background_niceness: int = 10,
        attempt: int | None = None,
    ) -> None:
        """``background_niceness`` lowers the background thread's CPU priority (Linux), so
        on a busy machine the save takes the cycles training leaves, not training's.
        ``attempt`` names the sets (see ``ArtifactStore.write``)."""
        self._store = store
        self._operation_id = operation_id
        self._attempt = attempt
        self._commit = commit
        self._on_error = on_error
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="checkpoint",
            initializer=_lower_priority,
            initargs=(background_niceness,),
        )
        self._in_flight: Future[None] | None = None
        self._lock = threading.Lock()

    def save(
        self,
        checkpoint_type: CheckpointType,
        capture: Capture,
        *,
        sequence: int,
        background: bool,
    ) -> None:
        """Save ``capture`` as checkpoint ``sequence``. Waits for the previous save first;
        with ``background`` returns before the files are written, otherwise after the commit."""
        with self._lock:
            self._wait_for_previous()
            if not background:
                self._write_and_commit(checkpoint_type, capture, sequence)
                return
            self._in_flight = self._executor.submit(
                self._write_and_commit, checkpoint_type, capture, sequence
            )

    def flush(self) -> None:
        """Wait for the save in flight; raise its failure unless ``on_error`` took it."""
        with self._lock:
            self._wait_for_previous()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._executor.shutdown(wait=True)

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _wait_for_previous(self) -> None:
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            return
        error = in_flight.exception()
        if error is None:
            return
        if self._on_error is None or not isinstance(error, CheckpointWriteFailed):
            raise error
        self._on_error(error)

    def _write_and_commit(
        self, checkpoint_type: CheckpointType, capture: Capture, sequence: int
    ) -> None:
        started = time.perf_counter()
        try:
            manifest = self._store.write(
                self._operation_id, sequence, capture.files, attempt=self._attempt
            )
            saved = SavedCheckpoint(
                operation_id=self._operation_id,
                sequence=sequence,
                checkpoint_type=checkpoint_type,
                state=capture.state,
                manifest=manifest,
                artifacts_path=relative_path(self._operation_id, sequence, self._attempt),
                write_seconds=time.perf_counter() - started,
            )
            self._commit(saved)
        except Exception as exc:
            raise CheckpointWriteFailed(sequence, checkpoint_type, exc) from exc


def _reason(cause: BaseException) -> str:
    detail = getattr(cause, "detail", None)
    return f"{type(cause).__name__}: {detail or cause}"


def _lower_priority(niceness: int) -> None:
    if niceness > 0 and sys.platform.startswith("linux"):
        # On Linux a thread id names just that thread; elsewhere it would be the process.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


def open_artifact_store(
    settings: Settings, environ: Mapping[str, str] = os.environ
) -> ArtifactStore:
    """The store under ``settings.artifacts_path``; ``KTRDR_TEST_SLOW_ARTIFACT_WRITE_SECONDS``
    (a test hook) pauses after each file written, so tests can kill a save midway."""
    raw = environ.get(SLOW_WRITE_ENV, "").strip()
    try:
        delay = float(raw) if raw else 0.0
    except ValueError:
        raise ValueError(f"{SLOW_WRITE_ENV} must be a number of seconds, got {raw!r}") from None
    return ArtifactStore(settings.artifacts_path, write_delay_seconds=max(delay, 0.0))
