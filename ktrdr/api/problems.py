"""Errors as application/problem+json with a stable ``code`` — never a traceback."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from ktrdr.api.auth import Forbidden, Unauthenticated
from ktrdr.domain.errors import (
    CheckpointNotFound,
    CheckpointNotResumable,
    CheckpointSequenceMismatch,
    ConflictingWrite,
    CorruptHistory,
    DeviceChangeRefused,
    DomainError,
    OperationAlreadyExists,
    OperationBusy,
    OperationFinished,
    OperationNotCancellable,
    OperationNotClaimable,
    OperationNotFound,
    OperationNotResumable,
    StaleAttempt,
    UnknownEventType,
    ValidationError,
    WorkerNotFound,
)
from ktrdr.domain.tokens import TokenAlreadyExists, TokenNotFound, TokenRevokedError
from ktrdr.eventlog import ConcurrencyError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 2
"""What a 503 asks clients to wait: about the time the embedded server takes to restart."""
CONNECTION_LOST_SQLSTATES = ("08", "57P")
"""Connection exceptions, and an operator or a crash ending the session (57P01-57P05).
Client-side failures (cannot connect, connection closed, PoolTimeout) have no SQLSTATE."""


def _refusal(error: type[DomainError], status: int) -> tuple[type[Exception], tuple[int, str]]:
    return error, (status, error.code)


ERRORS: dict[type[Exception], tuple[int, str]] = dict(
    [
        _refusal(ValidationError, 422),
        _refusal(OperationNotFound, 404),
        _refusal(CheckpointNotFound, 404),
        _refusal(WorkerNotFound, 404),
        _refusal(OperationNotResumable, 409),
        _refusal(OperationNotClaimable, 409),
        _refusal(OperationNotCancellable, 409),
        _refusal(OperationBusy, 409),
        _refusal(OperationAlreadyExists, 409),
        _refusal(StaleAttempt, 409),
        _refusal(CheckpointSequenceMismatch, 409),
        _refusal(CheckpointNotResumable, 409),
        _refusal(ConflictingWrite, 409),
        _refusal(OperationFinished, 409),
        _refusal(DeviceChangeRefused, 409),
        _refusal(Unauthenticated, 401),
        _refusal(Forbidden, 403),
        _refusal(TokenNotFound, 404),
        _refusal(TokenRevokedError, 409),
        _refusal(TokenAlreadyExists, 409),
        # A stored history this code cannot read: the server's fault, not the request's.
        _refusal(UnknownEventType, 500),
        _refusal(CorruptHistory, 500),
        (ConcurrencyError, (409, "CONCURRENT_MODIFICATION")),
        # A body, path or query that does not fit the route's schema: the same refusal as
        # params the domain refuses, so one code has one status.
        (ValidationException, (422, "VALIDATION_ERROR")),
    ]
)
"""Each error a client can meet, by exception class (a subclass takes its nearest mapped
ancestor's entry): its HTTP status and stable ``code``. A code has exactly one status."""

_HTTP_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}
"""Codes of the other HTTP errors the framework raises (a route that does not exist…)."""

INTERNAL_ERROR = (500, "INTERNAL_ERROR")


def status_and_code(exc: Exception) -> tuple[int, str]:
    """The status and code of ``exc``, from its nearest mapped class; unmapped: a 500."""
    for cls in type(exc).__mro__:
        if cls in ERRORS:
            return ERRORS[cls]
    return INTERNAL_ERROR


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> Response[Any]:
    body = {"type": "about:blank", "status": status, "title": title, "detail": detail, "code": code}
    body.update(extra)
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON)


def _title(code: str) -> str:
    return code.replace("_", " ").capitalize()


def domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    status, code = status_and_code(exc)
    if (status, code) == INTERNAL_ERROR:
        return internal_error(request, exc)
    if isinstance(exc, StaleAttempt):
        counters = getattr(request.app.state, "counters", None)
        if counters is not None:
            counters["stale_attempts_refused"] += 1
    extra: dict[str, Any] = {}
    errors = getattr(exc, "errors", None)
    if errors:
        extra["errors"] = errors
    response = problem(status, code, _title(code), exc.detail, **extra)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def concurrency_error(_: Request[Any, Any, Any], exc: ConcurrencyError) -> Response[Any]:
    status, code = status_and_code(exc)
    return problem(
        status,
        code,
        _title(code),
        f"{exc}; another request changed it first — reload and retry",
    )


def validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    status, code = status_and_code(exc)
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
    return problem(status, code, _title(code), detail, errors=errors)


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

__all__ = ["ERRORS", "EXCEPTION_HANDLERS", "PROBLEM_JSON", "problem", "status_and_code"]
