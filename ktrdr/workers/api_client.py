"""The worker's side of the REST API. Workers never touch the database.

Answers are parsed into the contract models (``ktrdr.contracts``); an answer that is not
its contract raises ``ktrdr.transport.UnreadableAnswer``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from ktrdr.contracts import (
    CheckpointSavedAnswer,
    CheckpointView,
    Claim,
    HeartbeatAnswer,
    MetricsRecorded,
    OperationView,
    Recorded,
    Registered,
    StatusAnswer,
)
from ktrdr.transport import NoAnswer, ProblemAnswer, Transport


class BackendUnavailable(Exception):
    """No answer (connection refused, timeout) or a 5xx: retry later."""


class Refused(Exception):
    """A 4xx problem answer: the backend understood and said no."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} ({code})")
        self.status = status
        self.code = code
        self.detail = detail


FENCED_CODES = {
    "STALE_ATTEMPT",
    "CHECKPOINT_SEQUENCE_MISMATCH",
    "CONFLICTING_WRITE",
    "OPERATION_FINISHED",
}
"""Refusals meaning: this worker no longer owns the operation; abandon it."""


class OperationAbandoned(Exception):
    """This worker no longer owns the operation (stale attempt, or dropped on re-registration)."""


WriteAnswer = StatusAnswer | Recorded | MetricsRecorded | CheckpointSavedAnswer
_WRITE_ANSWERS: dict[str, type[WriteAnswer]] = {
    "acknowledge": StatusAnswer,
    "release": StatusAnswer,
    "progress": Recorded,
    "metrics": MetricsRecorded,
    "checkpoints": CheckpointSavedAnswer,
    "checkpoint-failures": Recorded,
    "complete": StatusAnswer,
    "fail": StatusAnswer,
    "cancelled": StatusAnswer,
}


def cancellation_requested(answer: WriteAnswer) -> bool:
    """Whether a person asked to cancel the run (the answers to its reports say so)."""
    return not isinstance(answer, StatusAnswer) and answer.cancellation_requested


@contextmanager
def _as_worker_errors(method: str, path: str) -> Iterator[None]:
    try:
        yield
    except NoAnswer as exc:
        raise BackendUnavailable(f"{method} {path}: {exc.reason}") from None
    except ProblemAnswer as exc:
        if exc.status >= 500:
            raise BackendUnavailable(f"{method} {path}: HTTP {exc.status} ({exc.code})") from None
        raise Refused(exc.status, exc.code, exc.detail) from None


class ApiClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        token: str | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self._transport = Transport(base_url, timeout=timeout, client=client, token=token)

    def close(self) -> None:
        self._transport.close()

    def register(self, body: dict[str, Any]) -> Registered:
        with _as_worker_errors("POST", "/workers"):
            return self._transport.call(Registered, "POST", "/workers", json=body)

    def heartbeat(
        self, worker_id: str, operation_id: str | None, attempt: int | None
    ) -> HeartbeatAnswer:
        path = f"/workers/{worker_id}/heartbeat"
        body = {"operation_id": operation_id, "attempt": attempt}
        with _as_worker_errors("POST", path):
            return self._transport.call(HeartbeatAnswer, "POST", path, json=body, timeout=5.0)

    def claim(self, worker_id: str, wait_seconds: float) -> Claim | None:
        path = f"/workers/{worker_id}/claim"
        with _as_worker_errors("POST", path):
            return self._transport.maybe(
                Claim,
                "POST",
                path,
                json={"wait_seconds": wait_seconds},
                timeout=wait_seconds + 10.0,
            )

    def deregister(self, worker_id: str, reason: str) -> None:
        path = f"/workers/{worker_id}"
        with _as_worker_errors("DELETE", path):
            self._transport.send("DELETE", path, params={"reason": reason})

    def write(self, operation_id: str, what: str, body: dict[str, Any]) -> WriteAnswer:
        """POST a fenced write (progress, checkpoints, complete, fail, cancelled)."""
        path = f"/operations/{operation_id}/{what}"
        with _as_worker_errors("POST", path):
            return self._transport.call(_WRITE_ANSWERS[what], "POST", path, json=body)

    def checkpoint(self, operation_id: str) -> CheckpointView:
        path = f"/checkpoints/{operation_id}"
        with _as_worker_errors("GET", path):
            return self._transport.call(CheckpointView, "GET", path)

    def operation(self, operation_id: str) -> OperationView:
        path = f"/operations/{operation_id}"
        with _as_worker_errors("GET", path):
            return self._transport.call(OperationView, "GET", path)


__all__ = [
    "FENCED_CODES",
    "ApiClient",
    "BackendUnavailable",
    "Claim",
    "OperationAbandoned",
    "Refused",
    "WriteAnswer",
    "cancellation_requested",
]
