"""API tokens: the events of a ``token-<id>`` stream, their commands, state and rules.

Only a hash of a token's secret is ever recorded. A worker id is bound to the first
worker token that registers it (or named with ``--worker-id``); the binding is an
event of that token's stream, so the log says which token may act as which worker.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Annotated, assert_never

from pydantic import StringConstraints

from ktrdr.domain.errors import DomainError
from ktrdr.domain.values import Message, UtcDatetime, WorkerId

_Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
_Hash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
TOKEN_PREFIX = "token-"


class Role(enum.StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"
    WORKER = "worker"


class TokenNotFound(DomainError):
    code = "TOKEN_NOT_FOUND"

    def __init__(self, token_id: str) -> None:
        super().__init__(f"token {token_id} does not exist; `ktrdr tokens list` shows them")
        self.token_id = token_id


class TokenRevokedError(DomainError):
    code = "TOKEN_REVOKED"

    def __init__(self, token_id: str) -> None:
        super().__init__(f"token {token_id} is revoked")
        self.token_id = token_id


class TokenAlreadyExists(DomainError):
    code = "TOKEN_ALREADY_EXISTS"

    def __init__(self, token_id: str) -> None:
        super().__init__(f"token {token_id} already exists")


class _TokenMessage(Message):
    token_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    at: UtcDatetime


class TokenIssued(_TokenMessage):
    name: _Name
    role: Role
    secret_sha256: _Hash
    worker_id: WorkerId | None = None
    """The one worker id a worker token may act as; None: the ids it registers."""


class TokenRevoked(_TokenMessage):
    pass


class WorkerIdBound(_TokenMessage):
    """From now on only this token may act as ``worker_id``."""

    worker_id: WorkerId


TokenEvent = TokenIssued | TokenRevoked | WorkerIdBound


class IssueToken(TokenIssued):
    pass


class RevokeToken(_TokenMessage):
    pass


class BindWorkerId(_TokenMessage):
    worker_id: WorkerId


TokenCommand = IssueToken | RevokeToken | BindWorkerId


class TokenState(Message):
    token_id: str
    name: str
    role: Role
    worker_id: str | None
    issued_at: UtcDatetime
    revoked_at: UtcDatetime | None = None
    bound: tuple[str, ...] = ()
    version: int


def token_stream(token_id: str) -> str:
    return TOKEN_PREFIX + token_id


def decide_token(state: TokenState | None, command: TokenCommand) -> list[TokenEvent]:
    """The events a command on a token adds; [] when it is already done (idempotent)."""
    match command:
        case IssueToken():
            if state is not None:
                raise TokenAlreadyExists(command.token_id)
            return [TokenIssued(**command.model_dump())]
        case RevokeToken():
            if state is None:
                raise TokenNotFound(command.token_id)
            if state.revoked_at is not None:
                return []
            return [TokenRevoked(token_id=command.token_id, at=command.at)]
        case BindWorkerId():
            if state is None:
                raise TokenNotFound(command.token_id)
            if state.revoked_at is not None:
                raise TokenRevokedError(command.token_id)
            if command.worker_id in state.bound:
                return []
            return [WorkerIdBound(**command.model_dump())]
        case _:
            assert_never(command)


def evolve_token(state: TokenState | None, event: TokenEvent) -> TokenState:
    match event:
        case TokenIssued():
            return TokenState(
                token_id=event.token_id,
                name=event.name,
                role=event.role,
                worker_id=event.worker_id,
                issued_at=event.at,
                bound=(event.worker_id,) if event.worker_id else (),
                version=1,
            )
        case TokenRevoked():
            assert state is not None
            return state.model_copy(update={"revoked_at": event.at, "version": state.version + 1})
        case WorkerIdBound():
            assert state is not None
            bound = (*state.bound, event.worker_id)
            return state.model_copy(update={"bound": bound, "version": state.version + 1})
        case _:
            assert_never(event)


def fold_token(events: Iterable[TokenEvent], state: TokenState | None = None) -> TokenState | None:
    for event in events:
        state = evolve_token(state, event)
    return state
