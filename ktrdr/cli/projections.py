"""`ktrdr projections`: rebuild the read models from the log and verify them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

from ktrdr.cli.errors import exits_cleanly

if TYPE_CHECKING:
    from ktrdr.projections import replay

app = typer.Typer(
    help="Read models: rebuild them from the event log, verify them.", no_args_is_help=True
)
out = Console()


async def _run(url: str, action: str) -> replay.ReplayReport:
    from psycopg import AsyncConnection

    from ktrdr.projections import replay
    from ktrdr.projections.registry import all_projections

    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        if action == "rebuild":
            return await replay.rebuild(conn, all_projections())
        return await replay.verify(conn, all_projections())


def _print(report: replay.ReplayReport) -> None:
    from ktrdr.projections import replay

    for name, count in report.events_replayed.items():
        out.print(f"{name:<28} {count} events replayed", highlight=False)
    for line in replay.describe(report.differences):
        out.print(f"differs: {line}", markup=False, highlight=False, soft_wrap=True)


def _database() -> str:
    # Imported here: `ktrdr --help` and the REST commands must not load the database stack.
    from ktrdr.bootstrap.debugging import debug_database
    from ktrdr.config import load_settings

    return debug_database(load_settings())


@app.command()
@exits_cleanly
def rebuild() -> None:
    """Replay the whole log into fresh tables and swap them in (appends wait meanwhile)."""
    url = _database()
    import asyncio  # imported here, as the database stack: see _database

    report = asyncio.run(_run(url, "rebuild"))
    _print(report)
    out.print(f"rebuilt {len(report.events_replayed)} read models from the event log")


@app.command()
@exits_cleanly
def verify() -> None:
    """Replay the log in one snapshot and report any difference with the live read models."""
    from ktrdr.projections import replay

    url = _database()
    import asyncio  # imported here, as the database stack: see _database

    report = asyncio.run(_run(url, "verify"))
    _print(report)
    if not report.ok:
        rows = len(replay.describe(report.differences))
        out.print(
            f"{rows} row(s) differ from a rebuild: `ktrdr projections rebuild` rebuilds them",
            highlight=False,
        )
        raise typer.Exit(1)
    out.print("all read models match a rebuild")
