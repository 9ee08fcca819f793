#!/usr/bin/env python3
"""Export one operation's events as JSON lines, to replay them elsewhere.

Reads KTRDR_DATABASE_URL (else the embedded database), as `ktrdr events` does.

```
scripts/export_stream.py 3f2b8c1e-0d4a-4c47-9a55-6f1e2d3c4b5a > ops.jsonl
scripts/replay_stream.py ops.jsonl
```
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from ktrdr.bootstrap import debugging
from ktrdr.bootstrap.system import bootstrap
from ktrdr.cli.events import fails_cleanly
from ktrdr.cli.output import OperationIdArgument
from ktrdr.config import load_settings

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        help="Read this database instead of KTRDR_DATABASE_URL (it is never migrated).",
        show_default=False,
    ),
]


@fails_cleanly
def export(operation_id: OperationIdArgument, database_url: DatabaseOption = None) -> None:
    """Print the operation's events, one JSON object per line, with ids and metadata."""
    settings = load_settings(database_url=database_url) if database_url else load_settings()
    url = debugging.debug_database(settings)

    async def lines() -> list[str]:
        async with bootstrap(settings, database_url=url, pool_size=1) as system:
            return await debugging.export_stream(system.event_log, operation_id)

    for line in asyncio.run(lines()):
        typer.echo(line)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="markdown")
app.command(help=__doc__)(export)

if __name__ == "__main__":
    app()
