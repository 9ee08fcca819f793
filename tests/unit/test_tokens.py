"""Tokens as pure domain: issued once, revoked once, a worker id bound once per token."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ktrdr.domain import ValidationError
from ktrdr.domain.tokens import (
    BindWorkerId,
    IssueToken,
    RevokeToken,
    Role,
    TokenAlreadyExists,
    TokenIssued,
    TokenNotFound,
    TokenRevoked,
    TokenRevokedError,
    WorkerIdBound,
    decide_token,
    fold_token,
)

T = "0123456789abcdef0123456789abcdef"
AT = datetime(2026, 11, 30, tzinfo=UTC)
ISSUE = IssueToken(token_id=T, at=AT, name="ci", role=Role.WORKER, secret_sha256="f" * 64)


def test_issue_then_revoke() -> None:
    issued = decide_token(None, ISSUE)
    assert issued == [TokenIssued(**ISSUE.model_dump())]
    state = fold_token(issued)
    assert state is not None and state.role is Role.WORKER and state.revoked_at is None
    with pytest.raises(TokenAlreadyExists):
        decide_token(state, ISSUE)
    revoked = decide_token(state, RevokeToken(token_id=T, at=AT))
    assert revoked == [TokenRevoked(token_id=T, at=AT)]
    state = fold_token(revoked, state)
    assert state is not None and state.revoked_at == AT and state.version == 2
    assert decide_token(state, RevokeToken(token_id=T, at=AT)) == []


def test_binding_a_worker_id_is_idempotent_and_refused_once_revoked() -> None:
    state = fold_token(decide_token(None, ISSUE))
    bind = BindWorkerId(token_id=T, at=AT, worker_id="w-1")
    bound = decide_token(state, bind)
    assert bound == [WorkerIdBound(token_id=T, at=AT, worker_id="w-1")]
    state = fold_token(bound, state)
    assert state is not None and state.bound == ("w-1",)
    assert decide_token(state, bind) == []
    state = fold_token(decide_token(state, RevokeToken(token_id=T, at=AT)), state)
    with pytest.raises(TokenRevokedError):
        decide_token(state, BindWorkerId(token_id=T, at=AT, worker_id="w-2"))


def test_unknown_tokens_and_bad_values_are_refused() -> None:
    with pytest.raises(TokenNotFound):
        decide_token(None, RevokeToken(token_id=T, at=AT))
    with pytest.raises(ValidationError):
        IssueToken(token_id="x", at=AT, name="n", role=Role.ADMIN, secret_sha256="f" * 64)
    with pytest.raises(ValidationError):
        IssueToken(token_id=T, at=AT, name="n\x00", role=Role.ADMIN, secret_sha256="f" * 64)
    with pytest.raises(ValidationError):
        IssueToken(token_id=T, at=AT, name="n", role="root", secret_sha256="f" * 64)
