"""The worker's side of the REST API (httpx). Workers never touch the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


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


@dataclass(frozen=True)
class Claim:
    operation_id: str
    operation_type: str
    params: dict[str, Any]
    attempt: int
    next_checkpoint_sequence: int
    resume_from: dict[str, Any] | None
    fallbacks: list[dict[str, Any]]


class ApiClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        token: str | None = None,
    ):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = client or httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, headers=headers
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        try:
            response = self._http.request(
                method, "/api/v1" + path, timeout=timeout or httpx.USE_CLIENT_DEFAULT, **kwargs
            )
        except httpx.TransportError as exc:
            raise BackendUnavailable(f"{method} {path}: {exc!r}") from None
        if response.status_code >= 500:
            raise BackendUnavailable(f"{method} {path}: HTTP {response.status_code}")
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            raise Refused(
                response.status_code,
                str(body.get("code", f"HTTP_{response.status_code}")),
                str(body.get("detail", response.text[:200])),
            )
        return None if response.status_code == 204 else response.json()

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/workers", json=body)
        return result

    def heartbeat(self, worker_id: str, operation_id: str | None, attempt: int | None) -> Any:
        body = {"operation_id": operation_id, "attempt": attempt}
        return self._call("POST", f"/workers/{worker_id}/heartbeat", json=body, timeout=5.0)

    def claim(self, worker_id: str, wait_seconds: float) -> Claim | None:
        body = self._call(
            "POST",
            f"/workers/{worker_id}/claim",
            json={"wait_seconds": wait_seconds},
            timeout=wait_seconds + 10.0,
        )
        if body is None:
            return None
        return Claim(**body)

    def deregister(self, worker_id: str, reason: str) -> None:
        self._call("DELETE", f"/workers/{worker_id}", params={"reason": reason})

    def write(self, operation_id: str, what: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a fenced write (progress, checkpoints, complete, fail, cancelled)."""
        result: dict[str, Any] = self._call("POST", f"/operations/{operation_id}/{what}", json=body)
        return result

    def checkpoint(self, operation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/checkpoints/{operation_id}")
        return result

    def operation(self, operation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/operations/{operation_id}")
        return result
