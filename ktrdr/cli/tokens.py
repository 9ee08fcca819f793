"""`ktrdr tokens`: API tokens, straight on the database (like `ktrdr db`), so the first
ones can be made before any server runs."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ktrdr.cli.errors import exits_cleanly
from ktrdr.cli.output import JsonOption

if TYPE_CHECKING:
    from ktrdr.bootstrap.system import System
    from ktrdr.handlers import tokens

app = typer.Typer(
    help="API tokens: create (the secret is shown once), list, revoke.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)
ACTOR = "ktrdr tokens"
T = TypeVar("T")


class Role(StrEnum):
    """The domain's token roles (a unit test pins them): a Click choice, so that loading
    this module for another command does not load the domain."""

    admin = "admin"
    operator = "operator"
    viewer = "viewer"
    worker = "worker"


def _run(work: Callable[[System], Awaitable[T]]) -> T:
    # Imported here: the REST commands must not pay for the database stack.
    import asyncio

    from ktrdr.bootstrap.system import bootstrap
    from ktrdr.config import load_settings
    from ktrdr.domain.errors import DomainError

    settings = load_settings()

    async def go() -> T:
        async with bootstrap(settings, pool_size=1) as system:
            return await work(system)

    try:
        return asyncio.run(go())
    except DomainError as exc:
        err.print(f"error: {exc.detail}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@app.command()
@exits_cleanly
def create(
    role: Annotated[Role, typer.Option(help="What the token may do.", show_default=False)],
    name: Annotated[
        str, typer.Option(help="Who holds it: events it causes name it.", show_default=False)
    ],
    worker_id: Annotated[
        str | None,
        typer.Option(help="A worker token: the one worker id it may act as.", show_default=False),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token and print its secret (only now: only its hash is stored)."""
    if worker_id is not None and role is not Role.worker:
        raise typer.BadParameter("--worker-id is for --role worker", param_hint="--worker-id")

    from ktrdr.domain.tokens import Role as DomainRole
    from ktrdr.eventlog import ConcurrencyError
    from ktrdr.handlers import tokens

    async def issue(system: System) -> tokens.IssuedToken:
        try:
            return await tokens.issue_token(
                system.event_log,
                system.bus.clock,
                name=name,
                role=DomainRole(role.value),
                worker_id=worker_id,
                actor=ACTOR,
            )
        except ConcurrencyError:
            err.print(f"error: worker id {worker_id!r} is bound to another token already")
            raise typer.Exit(1) from None

    issued = _run(issue)
    if as_json:
        body = {
            "token": issued.token,
            "token_id": issued.token_id,
            "name": issued.name,
            "role": str(issued.role),
            "worker_id": issued.worker_id,
        }
        out.print_json(json.dumps(body))
        return
    out.print(issued.token, highlight=False, soft_wrap=True)
    err.print(f"token {issued.token_id} ({issued.role}, {issued.name}): keep the secret above")


@app.command("list")
@exits_cleanly
def list_(as_json: JsonOption = False) -> None:
    """List tokens (never their secrets): role, name, created and last used."""

    from ktrdr.handlers import tokens

    async def rows(system: System) -> list[dict[str, Any]]:
        async with system.pool.connection() as conn:
            return await tokens.list_tokens(conn)

    found = _run(rows)
    if as_json:
        out.print_json(json.dumps(found))
        return
    table = Table("TOKEN ID", "NAME", "ROLE", "WORKER ID", "CREATED", "LAST USED", "REVOKED")
    for row in found:
        table.add_row(
            row["token_id"],
            row["name"],
            row["role"],
            row["worker_id"] or "-",
            row["created_at"][:19],
            (row["last_used_at"] or "-")[:19],
            (row["revoked_at"] or "-")[:19],
        )
    out.print(table)


@app.command()
@exits_cleanly
def revoke(token_id: Annotated[str, typer.Argument(metavar="TOKEN_ID")]) -> None:
    """Revoke a token: the next request that carries it gets 401."""

    from ktrdr.handlers import tokens

    async def revoke_it(system: System) -> None:
        await tokens.revoke_token(system.event_log, system.bus.clock, token_id, actor=ACTOR)

    _run(revoke_it)
    out.print(f"revoked {token_id}")


def loopback_only(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
