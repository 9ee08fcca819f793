"""Who may call each route: one table, enforced by one guard (``ktrdr.api.auth``).

Every route of the app must have an entry (a test walks the route table), so a new
route is closed until someone decides who may call it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from ktrdr.domain.tokens import Role


class Access(enum.Enum):
    OPEN = "open"
    """No token needed: health, the OpenAPI documents."""
    READ = "read"
    OPERATE = "operate"
    """Creating, cancelling, resuming operations; deleting checkpoints; cleanup."""
    WORKER = "worker"
    """A worker's own calls, as a worker id bound to its token (admins may too)."""
    ADMIN = "admin"


class WorkerIdIn(enum.Enum):
    BODY = "body"
    PATH = "path"


@dataclass(frozen=True)
class Policy:
    access: Access
    worker_id_in: WorkerIdIn | None = None
    """Where a worker route names the worker it acts as."""
    binds: bool = False
    """A registration: an unbound worker id becomes the token's own."""
    also: frozenset[Role] = frozenset()
    """Roles allowed beyond those ``access`` grants."""


ROLES: Mapping[Access, frozenset[Role]] = {
    Access.OPEN: frozenset(Role),
    Access.READ: frozenset({Role.VIEWER, Role.OPERATOR, Role.ADMIN}),
    Access.OPERATE: frozenset({Role.OPERATOR, Role.ADMIN}),
    Access.WORKER: frozenset({Role.WORKER, Role.ADMIN}),
    Access.ADMIN: frozenset({Role.ADMIN}),
}

OPEN = Policy(Access.OPEN)
READ = Policy(Access.READ)
OPERATE = Policy(Access.OPERATE)
# A backtest loads its model from a completed training: the operation and its checkpoint.
READ_FOR_WORKERS = Policy(Access.READ, also=frozenset({Role.WORKER}))
WORKER_WRITE = Policy(Access.WORKER, WorkerIdIn.BODY)
WORKER_PATH = Policy(Access.WORKER, WorkerIdIn.PATH)
REGISTER = Policy(Access.WORKER, WorkerIdIn.BODY, binds=True)

_OPS = "/api/v1/operations/{op_id}"
_WORKER_WRITES = (
    "acknowledge",
    "release",
    "progress",
    "metrics",
    "checkpoints",
    "checkpoint-failures",
    "complete",
    "fail",
    "cancelled",
)

POLICIES: Mapping[tuple[str, str], Policy] = {
    ("GET", "/api/v1/health"): OPEN,
    ("GET", "/api/v1/operation-types"): READ,
    ("GET", "/api/v1/operations"): READ,
    ("POST", "/api/v1/operations"): OPERATE,
    ("GET", _OPS): READ_FOR_WORKERS,
    ("GET", _OPS + "/events"): READ,
    ("GET", _OPS + "/metrics"): READ,
    ("POST", _OPS + "/cancel"): OPERATE,
    ("POST", _OPS + "/resume"): OPERATE,
    **{("POST", f"{_OPS}/{write}"): WORKER_WRITE for write in _WORKER_WRITES},
    ("GET", "/api/v1/checkpoints"): READ,
    ("GET", "/api/v1/checkpoints/stats"): READ,
    ("POST", "/api/v1/checkpoints/cleanup"): OPERATE,
    ("GET", "/api/v1/checkpoints/{op_id}"): READ_FOR_WORKERS,
    ("GET", "/api/v1/checkpoints/{op_id}/history"): READ,
    ("DELETE", "/api/v1/checkpoints/{op_id}"): OPERATE,
    ("GET", "/api/v1/workers"): READ,
    ("POST", "/api/v1/workers"): REGISTER,
    ("POST", "/api/v1/workers/{worker_id}/heartbeat"): WORKER_PATH,
    ("POST", "/api/v1/workers/{worker_id}/claim"): WORKER_PATH,
    ("DELETE", "/api/v1/workers/{worker_id}"): WORKER_PATH,
    # The dashboard's pages and login hold no data: the API calls they make are checked.
    ("GET", "/"): OPEN,
    ("GET", "/operations/{op_id}"): OPEN,
    ("GET", "/workers"): OPEN,
    ("GET", "/favicon.ico"): OPEN,
    ("GET", "/login"): OPEN,
    ("POST", "/login"): OPEN,
    ("POST", "/logout"): OPEN,
}
"""(method, path template) → policy. OPTIONS (CORS preflight) answers without a token."""

OPEN_PREFIXES = ("/schema", "/ui/")
"""The OpenAPI documents and viewers, the dashboard's scripts and styles: what the API
is, never what it holds."""


def policy_for(method: str, path_template: str) -> Policy | None:
    if method == "OPTIONS" or path_template.startswith(OPEN_PREFIXES):
        return OPEN
    return POLICIES.get((method, path_template))


def allowed(policy: Policy, role: Role) -> bool:
    return role in ROLES[policy.access] or role in policy.also
