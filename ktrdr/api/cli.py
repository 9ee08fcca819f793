"""The `ktrdr` command line (Typer + Rich)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from ktrdr.api import cli_db, cli_projections
from ktrdr.config import SettingsError, load_settings

app = typer.Typer(
    name="ktrdr",
    help="Checkpoint & resilience for long-running ML work, event-sourced on PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(cli_db.app, name="db")
app.add_typer(cli_projections.app, name="projections")
err = Console(stderr=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the REST API and processors (embedded PostgreSQL unless KTRDR_DATABASE_URL is set)."""
    import uvicorn

    from ktrdr.api.app import create_app
    from ktrdr.api.bootstrap import prepare_database

    settings = load_settings()
    url = prepare_database(settings)
    uvicorn.run(create_app(settings, database_url=url), host=host, port=port, log_level="info")


def main() -> None:
    try:
        app()
    except SettingsError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(2)


__all__ = ["app", "main"]


if __name__ == "__main__":
    main()
