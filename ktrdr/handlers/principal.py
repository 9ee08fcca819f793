"""Who a request acts for, as the command bus records it in each event's metadata."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from ktrdr.domain.tokens import Role


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    """The token's name: what ``principal`` in an event's metadata says."""
    role: Role
    worker_id: str | None = None
    """The one worker id a worker token was issued for, if any."""


ANONYMOUS = Principal(token_id="", name="anonymous", role=Role.ADMIN)
"""Who requests act for while authentication is off (KTRDR_AUTH=off)."""

current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "current_principal", default=None
)
"""Set by the API's guard in the request's task, so no route has to pass it along."""
