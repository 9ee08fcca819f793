"""API tokens: issue, revoke and list them, and tell who a request's bearer is.

A secret is 32 random bytes (URL-safe base64); the log and the read model hold only its
sha256, so one indexed lookup finds a token and a database dump reveals no secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ktrdr.domain import from_payload
from ktrdr.domain.tokens import (
    BindWorkerId,
    IssueToken,
    RevokeToken,
    Role,
    TokenCommand,
    TokenEvent,
    TokenState,
    decide_token,
    fold_token,
    token_stream,
)
from ktrdr.eventlog import NO_STREAM, ConcurrencyError, EventLog
from ktrdr.handlers.bus import Clock, new_events
from ktrdr.handlers.principal import Principal

SECRET_PREFIX = "ktrdr_"
USAGE_WRITE_SECONDS = 60.0
"""Last-used times are written at most this often per token (per process)."""

_BY_HASH: LiteralString = (
    "SELECT t.token_id, t.name, t.role, t.secret_sha256, t.worker_id, t.revoked_at"
    " FROM api_tokens t WHERE t.secret_sha256 = %(hash)s"
)
_BINDING: LiteralString = "SELECT token_id FROM worker_tokens WHERE worker_id = %(worker_id)s"
_ANY_TOKEN: LiteralString = "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE revoked_at IS NULL)"
_LIST: LiteralString = """
SELECT t.token_id, t.name, t.role, t.worker_id, t.issued_at AS created_at, t.revoked_at,
       u.last_used_at
FROM api_tokens t LEFT JOIN api_token_usage u ON u.token_id = t.token_id
ORDER BY t.issued_at, t.token_id
"""
_TOUCH: LiteralString = """
INSERT INTO api_token_usage (token_id, last_used_at) VALUES (%(token_id)s, %(at)s)
ON CONFLICT (token_id) DO UPDATE SET last_used_at = GREATEST(
    api_token_usage.last_used_at, EXCLUDED.last_used_at)
"""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_id: str
    name: str
    role: Role
    worker_id: str | None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def _state(event_log: EventLog, token_id: str) -> TokenState | None:
    recorded = await event_log.read_stream(token_stream(token_id))
    events: list[TokenEvent] = [
        from_payload(e.event_type, e.schema_version, e.data)  # type: ignore[misc]
        for e in recorded
    ]
    return fold_token(events)


async def _handle(event_log: EventLog, command: TokenCommand, *, actor: str) -> list[TokenEvent]:
    state = await _state(event_log, command.token_id)
    events = decide_token(state, command)
    if events:
        batch = new_events(events, actor=actor, correlation_id=None, causation_id=None)
        expected = NO_STREAM if state is None else state.version
        await event_log.append(token_stream(command.token_id), batch, expected)
    return events


async def issue_token(
    event_log: EventLog,
    clock: Clock,
    *,
    name: str,
    role: Role,
    worker_id: str | None = None,
    actor: str,
) -> IssuedToken:
    secret = new_secret()
    command = IssueToken(
        token_id=uuid.uuid4().hex,
        at=clock(),
        name=name,
        role=role,
        secret_sha256=hash_secret(secret),
        worker_id=worker_id,
    )
    await _handle(event_log, command, actor=actor)
    return IssuedToken(secret, command.token_id, name, role, worker_id)


async def revoke_token(event_log: EventLog, clock: Clock, token_id: str, *, actor: str) -> None:
    await _handle(event_log, RevokeToken(token_id=token_id, at=clock()), actor=actor)


async def list_tokens(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LIST)
        return [_listed(row) for row in await cur.fetchall()]


def _listed(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


async def any_token(pool: AsyncConnectionPool[Any]) -> bool:
    async with pool.connection() as conn:
        cur = await conn.execute(_ANY_TOKEN)
        row = await cur.fetchone()
    return bool(row and row[0])


class Authenticator:
    """Finds the principal of a bearer secret: one indexed lookup a request, no cache, so
    a revocation holds from the next request on."""

    def __init__(self, pool: AsyncConnectionPool[Any], clock: Clock) -> None:
        self._pool = pool
        self._clock = clock
        self._touched: dict[str, float] = {}

    async def principal(self, secret: str) -> Principal | None:
        digest = hash_secret(secret)
        # getconn/putconn: `async with pool.connection()` commits an autocommit
        # connection for nothing, on every request (see PostgresEventLog._append_once).
        conn = await self._pool.getconn()
        try:
            cur = await conn.execute(_BY_HASH, {"hash": digest})
            row = await cur.fetchone()
            if row is None or row[5] is not None:
                return None
            token_id, name, role, stored, worker_id, _ = row
            # The lookup matched on the hash; comparing again in constant time keeps the
            # decision itself from depending on where two digests differ.
            if not hmac.compare_digest(stored, digest):
                return None
            await self._touch(conn, token_id)
        finally:
            await self._pool.putconn(conn)
        return Principal(token_id=token_id, name=name, role=Role(role), worker_id=worker_id)

    async def _touch(self, conn: AsyncConnection[Any], token_id: str) -> None:
        now = time.monotonic()
        if now - self._touched.get(token_id, -USAGE_WRITE_SECONDS) < USAGE_WRITE_SECONDS:
            return
        self._touched[token_id] = now
        await conn.execute(_TOUCH, {"token_id": token_id, "at": self._clock()})


async def may_act_as(
    pool: AsyncConnectionPool[Any],
    event_log: EventLog,
    clock: Clock,
    principal: Principal,
    worker_id: str,
    *,
    bind: bool,
) -> bool:
    """Whether a worker token may act as ``worker_id``; with ``bind`` (a registration) an
    unbound id becomes this token's, and no other token's."""
    if principal.worker_id is not None:
        return principal.worker_id == worker_id
    owner = await _owner(pool, worker_id)
    if owner is not None or not bind:
        return owner == principal.token_id
    command = BindWorkerId(token_id=principal.token_id, at=clock(), worker_id=worker_id)
    try:
        await _handle(event_log, command, actor=f"token:{principal.name}")
    except ConcurrencyError:
        pass  # another token bound it first, or this one did in a concurrent request
    return await _owner(pool, worker_id) == principal.token_id


async def _owner(pool: AsyncConnectionPool[Any], worker_id: str) -> str | None:
    async with pool.connection() as conn:
        cur = await conn.execute(_BINDING, {"worker_id": worker_id})
        row = await cur.fetchone()
    return None if row is None else str(row[0])


_FIRST_ADMIN_LOCK: LiteralString = (
    "SELECT pg_advisory_lock(hashtextextended('ktrdr.first-admin', 0))"
)
_FIRST_ADMIN_UNLOCK: LiteralString = (
    "SELECT pg_advisory_unlock(hashtextextended('ktrdr.first-admin', 0))"
)
FIRST_ADMIN_NAME = "admin"


async def issue_first_admin(
    pool: AsyncConnectionPool[Any], event_log: EventLog, clock: Clock
) -> IssuedToken | None:
    """An admin token when no live token exists (a fresh install), else None. Servers
    starting together on one database issue one between them."""
    async with pool.connection() as conn:
        await conn.execute(_FIRST_ADMIN_LOCK)
        try:
            if await any_token(pool):
                return None
            return await issue_token(
                event_log, clock, name=FIRST_ADMIN_NAME, role=Role.ADMIN, actor="ktrdr serve"
            )
        finally:
            await conn.execute(_FIRST_ADMIN_UNLOCK)
