"""The API tokens read model and the worker ids bound to them (inline)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, sql

from ktrdr.domain import from_payload
from ktrdr.domain.tokens import TOKEN_PREFIX, TokenIssued, TokenRevoked, WorkerIdBound
from ktrdr.eventlog import RecordedEvent
from ktrdr.projections.base import Mode, Tables

_ISSUED = sql.SQL(
    "INSERT INTO {tokens} (token_id, name, role, secret_sha256, worker_id, issued_at,"
    " stream_version) VALUES (%(token_id)s, %(name)s, %(role)s, %(secret_sha256)s,"
    " %(worker_id)s, %(at)s, %(version)s)"
)
_REVOKED = sql.SQL(
    "UPDATE {tokens} SET revoked_at = %(at)s, stream_version = %(version)s"
    " WHERE token_id = %(token_id)s"
)
_VERSION = sql.SQL("UPDATE {tokens} SET stream_version = %(version)s WHERE token_id = %(token_id)s")
# No ON CONFLICT: a second token binding a bound id fails its append, so the log never
# holds two bindings of one worker id.
_BOUND = sql.SQL(
    "INSERT INTO {bindings} (worker_id, token_id) VALUES (%(worker_id)s, %(token_id)s)"
)


class TokensProjection:
    name = "api_tokens"
    mode = Mode.INLINE
    tables: tuple[str, ...] = ("api_tokens", "worker_tokens")

    async def apply(
        self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        tokens, bindings = tables["api_tokens"], tables["worker_tokens"]
        for recorded in events:
            if not recorded.stream_id.startswith(TOKEN_PREFIX):
                continue
            event = from_payload(recorded.event_type, recorded.schema_version, recorded.data)
            row = {**event.model_dump(), "version": recorded.stream_version}
            match event:
                case TokenIssued():
                    await conn.execute(_ISSUED.format(tokens=tokens), row)
                    if event.worker_id is not None:
                        await conn.execute(_BOUND.format(bindings=bindings), row)
                case TokenRevoked():
                    await conn.execute(_REVOKED.format(tokens=tokens), row)
                case WorkerIdBound():
                    await conn.execute(_VERSION.format(tokens=tokens), row)
                    await conn.execute(_BOUND.format(bindings=bindings), row)
