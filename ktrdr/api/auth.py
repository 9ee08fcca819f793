"""The one guard every route passes: media type, bearer token, role, worker binding.

Routes declare nothing; ``ktrdr.api.policies`` says who may call each. The principal
found is set for the request's task, and the command bus names it in every event the
request appends (metadata ``principal``).
"""

from __future__ import annotations

import logging
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import ClientException, HTTPException, SerializationException
from litestar.handlers import BaseRouteHandler
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE

from ktrdr.api.dashboard import TOKEN_COOKIE
from ktrdr.api.policies import Access, Policy, WorkerIdIn, allowed, policy_for
from ktrdr.bootstrap.system import System
from ktrdr.domain.errors import DomainError
from ktrdr.domain.tokens import Role
from ktrdr.handlers import tokens
from ktrdr.handlers.principal import ANONYMOUS, Principal, current_principal

log = logging.getLogger(__name__)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BEARER = "bearer "


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"{detail}: send `Authorization: Bearer <token>` (`ktrdr tokens create`"
            " makes one; a local server wrote an admin token to $KTRDR_DATA_DIR/admin-token)"
        )


class Forbidden(DomainError):
    code = "FORBIDDEN"


async def authorize(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard: raises 415, 401 or 403 (problem+json), or lets the request through."""
    method = connection.scope["method"]  # type: ignore[typeddict-item]
    policy = policy_for(method, connection.scope["path_template"])
    if policy is None:
        raise Forbidden("no access policy covers this route; it stays closed")
    if method in MUTATING:
        _require_json(connection)
    if policy.access is Access.OPEN:
        return
    system: System = connection.app.state.system
    if not system.settings.auth_enabled:
        current_principal.set(ANONYMOUS)
        return
    principal = await _principal(connection)
    if not allowed(policy, principal.role):
        raise Forbidden(f"a {principal.role} token may not {method} {connection.url.path}")
    if policy.worker_id_in is not None and principal.role is not Role.ADMIN:
        await _check_worker(connection, system, policy, principal)
    current_principal.set(principal)


async def _principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    # The one place credentials are read: the Authorization header, else the dashboard's
    # HttpOnly, SameSite=Strict cookie; _require_json keeps cross-site forms from posting.
    header = connection.headers.get("authorization", "")
    if header[: len(BEARER)].lower() == BEARER and header[len(BEARER) :].strip():
        secret = header[len(BEARER) :].strip()
    elif cookie := connection.cookies.get(TOKEN_COOKIE, "").strip():
        secret = cookie
    else:
        raise Unauthenticated("no bearer token")
    authenticator: tokens.Authenticator = connection.app.state.authenticator
    principal = await authenticator.principal(secret)
    if principal is None:
        raise Unauthenticated("unknown or revoked token")
    return principal


def _require_json(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """A body must say it is JSON: a cross-site form cannot send that without a preflight."""
    content_type = connection.headers.get("content-type")
    if content_type is None:
        has_body = connection.headers.get("content-length", "0") not in ("", "0") or (
            "transfer-encoding" in connection.headers
        )
        if not has_body:
            return
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return
    raise HTTPException(
        status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        detail=f"send the body as Content-Type: application/json (got {media_type or 'none'!r})",
    )


async def _check_worker(
    connection: ASGIConnection[Any, Any, Any, Any],
    system: System,
    policy: Policy,
    principal: Principal,
) -> None:
    worker_id = await _worker_id(connection, policy)
    if not isinstance(worker_id, str) or not worker_id:
        raise Forbidden("a worker token acts only as a worker id it names")
    acts = await tokens.may_act_as(
        system.pool, system.event_log, system.bus.clock, principal, worker_id, bind=policy.binds
    )
    if not acts:
        raise Forbidden(f"token {principal.name!r} may not act as worker {worker_id!r}")


async def _worker_id(connection: ASGIConnection[Any, Any, Any, Any], policy: Policy) -> object:
    if policy.worker_id_in is WorkerIdIn.PATH:
        return connection.path_params.get("worker_id")
    # Request.json() keeps what it parsed: the handler's body does not parse it again.
    try:
        body = await connection.json()  # type: ignore[attr-defined]
    except SerializationException as exc:
        raise ClientException(detail=f"the body is not valid JSON: {exc}") from None
    return body.get("worker_id") if isinstance(body, dict) else None
