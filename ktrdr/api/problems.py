"""Errors as application/problem+json with a stable ``code`` — never a traceback."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from ktrdr.domain.errors import DomainError
from ktrdr.eventlog import ConcurrencyError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 2
"""What a 503 asks clients to wait: about the time the embedded server takes to restart."""
CONNECTION_LOST_SQLSTATES = ("08", "57P")
"""Connection exceptions, and an operator or a crash ending the session (57P01-57P05).
Client-side failures (cannot connect, connection closed, PoolTimeout) have no SQLSTATE."""

STATUS_BY_CODE: dict[str, int] = {
    "OPERATION_NOT_FOUND": 404,
    "CHECKPOINT_NOT_FOUND": 404,
    "WORKER_NOT_FOUND": 404,
    "OPERATION_NOT_RESUMABLE": 409,
    "OPERATION_NOT_CLAIMABLE": 409,
    "OPERATION_NOT_CANCELLABLE": 409,
    "OPERATION_BUSY": 409,
    "OPERATION_ALREADY_EXISTS": 409,
    "STALE_ATTEMPT": 409,
    "CONCURRENT_MODIFICATION": 409,
    "CHECKPOINT_CORRUPTED": 409,
    "CHECKPOINT_SEQUENCE_MISMATCH": 409,
    "CHECKPOINT_NOT_RESUMABLE": 409,
    "CONFLICTING_WRITE": 409,
    "OPERATION_FINISHED": 409,
    "VALIDATION_ERROR": 422,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "TOKEN_NOT_FOUND": 404,
    "TOKEN_REVOKED": 409,
    "TOKEN_ALREADY_EXISTS": 409,
    # A stored history this code cannot read: the server's fault, not the request's.
    "UNKNOWN_EVENT_TYPE": 500,
    "CORRUPT_HISTORY": 500,
}

_HTTP_CODES = {
    400: "VALIDATION_ERROR",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> Response[Any]:
    body = {"type": "about:blank", "status": status, "title": title, "detail": detail, "code": code}
    body.update(extra)
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON)


def _title(code: str) -> str:
    return code.replace("_", " ").capitalize()


def domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    status = STATUS_BY_CODE.get(exc.code, 409)
    if exc.code == "STALE_ATTEMPT":
        counters = getattr(request.app.state, "counters", None)
        if counters is not None:
            counters["stale_attempts_refused"] += 1
    extra: dict[str, Any] = {}
    errors = getattr(exc, "errors", None)
    if errors:
        extra["errors"] = errors
    response = problem(status, exc.code, _title(exc.code), exc.detail, **extra)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def concurrency_error(_: Request[Any, Any, Any], exc: ConcurrencyError) -> Response[Any]:
    return problem(
        409,
        "CONCURRENT_MODIFICATION",
        "Concurrent modification",
        f"{exc}; another request changed it first — reload and retry",
    )


def validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = exc.extra if isinstance(exc.extra, list) else []
    detail = exc.detail or "the request is malformed"
    if errors:
        detail = (
            "; ".join(
                f"{e.get('key') or e.get('source') or 'body'}: {e.get('message')}"
                for e in errors
                if isinstance(e, dict)
            )
            or detail
        )
    return problem(400, "VALIDATION_ERROR", "Validation error", detail, errors=errors)


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
    return problem(exc.status_code, code, _title(code), exc.detail)


def unfit_value(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A value PostgreSQL or Python cannot hold (a NUL byte in text, an integer past 64
    bits, a day count past a timedelta, a lone surrogate, JSON nested too deep): the
    request's fault, so a 422, never a 500."""
    log.info("refused unfit input on %s %s: %r", request.method, request.url.path, exc)
    what = _UNFIT.get(type(exc), "a value in the request cannot be stored")
    if isinstance(exc, psycopg.DataError):
        what = exc.diag.message_primary or what
    return problem(
        422, "VALIDATION_ERROR", "Validation error", f"{what}; fix the request and retry"
    )


_UNFIT: dict[type[Exception], str] = {
    OverflowError: "a number in the request is too large",
    UnicodeEncodeError: "a string in the request is not valid UTF-8 (a lone surrogate?)",
    RecursionError: "the request's JSON is nested too deeply",
}


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "INTERNAL_ERROR",
        "Internal error",
        "the server failed to handle this request; its log has the details",
    )


def database_error(request: Request[Any, Any, Any], exc: psycopg.OperationalError) -> Response[Any]:
    """503 while the database cannot be reached; any other operational error is a 500."""
    if exc.sqlstate is not None and not exc.sqlstate.startswith(CONNECTION_LOST_SQLSTATES):
        return internal_error(request, exc)
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    response = problem(
        HTTP_503_SERVICE_UNAVAILABLE,
        "DATABASE_UNAVAILABLE",
        "Database unavailable",
        f"the database cannot be reached right now; retry in {RETRY_AFTER_SECONDS} s"
        " (/api/v1/health answers 200 again once it is back)",
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error,
    ConcurrencyError: concurrency_error,
    # psycopg_pool's PoolTimeout and PoolClosed are OperationalErrors too.
    psycopg.OperationalError: database_error,
    ValidationException: validation_error,
    # Class 22 (data exception): the value sent, not the server, is at fault.
    psycopg.DataError: unfit_value,
    OverflowError: unfit_value,
    UnicodeEncodeError: unfit_value,
    RecursionError: unfit_value,
    HTTPException: http_error,
    Exception: internal_error,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "problem"]
