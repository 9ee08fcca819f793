#!/usr/bin/env python3
"""Replay an exported stream into an empty database, to reproduce what happened.

The events are appended through the event log at their original versions, with
their ids and metadata, so the read models are built as the live system builds
them. Prints each operation as GET /api/v1/operations/{id} shows it (one JSON
document per operation on stdout), then verifies the read models against a
rebuild: exit 1 when they differ.

```
scripts/export_stream.py 3f2b8c1e-0d4a-4c47-9a55-6f1e2d3c4b5a > ops.jsonl
scripts/replay_stream.py ops.jsonl          # a throwaway PostgreSQL
scripts/replay_stream.py ops.jsonl --keep   # ...left running after
scripts/replay_stream.py ops.jsonl --database-url postgresql:///scratch
```
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from ktrdr.bootstrap import database, debugging
from ktrdr.cli.events import fails_cleanly
from ktrdr.cli.output import err, print_json
from ktrdr.config import load_settings, redact
from ktrdr.projections import replay, timeline


def note(text: str) -> None:
    err.print(text, markup=False, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def target(database_url: str | None, keep: bool) -> Iterator[str]:
    if database_url:
        database.migrate(database_url)
        yield database_url
        return
    with debugging.scratch_database(keep=keep) as url:
        yield url
        if keep:
            note(f"scratch database kept: KTRDR_DATABASE_URL='{url}' ktrdr events replay ID")


def report(outcome: debugging.ReplayOutcome, url: str) -> None:
    imported = outcome.imported
    note(f"appended {imported.appended} events of {', '.join(imported.streams)} to {redact(url)}")
    for operation in outcome.operations:
        print_json(operation)
    for line in replay.describe(outcome.verified.differences):
        note(f"differs: {line}")
    if not outcome.verified.ok:
        fail("verify: the read models differ from a rebuild of the log")
    note("verify: all read models match a rebuild")


def fail(message: str) -> NoReturn:
    note(f"error: {message}")
    raise typer.Exit(1)


@fails_cleanly
def replay_stream(
    export: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="JSON lines written by scripts/export_stream.py.",
        ),
    ],
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            metavar="URL",
            help="Replay into this database (migrated first; it must hold no events)."
            " Default: a throwaway embedded PostgreSQL.",
            show_default=False,
        ),
    ] = None,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Keep the throwaway PostgreSQL running and print its URL."),
    ] = False,
) -> None:
    """Append an exported stream into an empty database, print the operation, verify."""
    events = timeline.parse_export(export.read_text(encoding="utf-8").splitlines())
    settings = load_settings()
    with target(database_url, keep) as url:
        try:
            outcome = asyncio.run(debugging.replay_into(settings, url, events))
        except debugging.ImportRefused as exc:
            fail(str(exc))
        report(outcome, url)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="markdown")
app.command(help=__doc__)(replay_stream)

if __name__ == "__main__":
    app()
