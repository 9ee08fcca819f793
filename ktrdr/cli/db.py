"""`ktrdr db`: which database, its migrations and its size."""

from __future__ import annotations

import typer
from rich.console import Console

from ktrdr.cli.errors import exits_cleanly

app = typer.Typer(
    help="The PostgreSQL database: its URL, migrations and status.", no_args_is_help=True
)
out = Console()


@app.command()
@exits_cleanly
def url() -> None:
    """Print the database URL in use (starting the embedded PostgreSQL if none is configured)."""
    # Imported per command: `ktrdr --help` and the REST commands must not load the database stack.
    from ktrdr.bootstrap import database
    from ktrdr.config import load_settings

    out.print(database.resolve_url(load_settings()), highlight=False, soft_wrap=True)


@app.command()
@exits_cleanly
def migrate() -> None:
    """Run the Alembic migrations up to head on the configured (or embedded) database."""
    from ktrdr.bootstrap import database
    from ktrdr.bootstrap.system import prepare_database
    from ktrdr.config import load_settings

    url = prepare_database(load_settings())
    out.print(f"migrated to {database.current_revision(url)}")


@app.command()
@exits_cleanly
def status() -> None:
    """Show the migration head, the database's revision and the number of events."""
    from ktrdr.bootstrap import database
    from ktrdr.bootstrap.system import bootstrap, prepare_database
    from ktrdr.config import load_settings, redact

    settings = load_settings()
    url = prepare_database(settings, migrate=settings.database_url is None)
    current = database.current_revision(url)
    out.print(f"database   {redact(url)}", highlight=False)
    out.print(f"revision   {current or 'none'} (head {database.head_revision()})")
    if current is None:
        out.print("events     - (run `ktrdr db migrate`)")
        return

    async def count() -> int:
        async with bootstrap(settings, database_url=url, pool_size=1) as system:
            return await system.event_log.count()

    import asyncio

    out.print(f"events     {asyncio.run(count())}")
