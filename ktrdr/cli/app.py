"""The `ktrdr` command line (Typer + Rich)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ktrdr import __version__
from ktrdr.cli import (
    checkpoints,
    db,
    events,
    logs,
    operations,
    projections,
    tokens,
    worker,
    workers,
)
from ktrdr.cli.errors import OneLineUsageErrors, exit_code_of, exits_cleanly

app = typer.Typer(
    name="ktrdr",
    help="Checkpoint & resilience for long-running ML work, event-sourced on PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=OneLineUsageErrors,
)
app.add_typer(operations.app, name="operations")
app.add_typer(checkpoints.app, name="checkpoints")
app.add_typer(db.app, name="db")
app.add_typer(projections.app, name="projections")
app.add_typer(events.app, name="events")
app.add_typer(workers.app, name="workers")
app.add_typer(tokens.app, name="tokens")
app.command("worker")(worker.worker)
err = Console(stderr=True)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"ktrdr {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Checkpoint & resilience for long-running ML work, event-sourced on PostgreSQL."""


@app.command()
@exits_cleanly
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the REST API and processors (embedded PostgreSQL unless KTRDR_DATABASE_URL is set)."""
    from ktrdr.api.app import create_app
    from ktrdr.api.server import serve as run_server
    from ktrdr.bootstrap.database import embedded_pgdata
    from ktrdr.bootstrap.system import prepare_database
    from ktrdr.config import load_settings

    level = logs.configure()
    settings = load_settings()
    if not settings.auth_enabled:
        if not tokens.loopback_only(host):
            err.print(
                f"error: KTRDR_AUTH=off is refused when listening on {host}: only a server"
                " bound to loopback (127.0.0.1, ::1) may run without authentication"
            )
            raise typer.Exit(2)
        err.print("[yellow]warning:[/yellow] KTRDR_AUTH=off: every request is served, unasked")
    url = prepare_database(settings)
    api = create_app(
        settings,
        database_url=url,
        embedded_pgdata=embedded_pgdata(settings),
        admin_token_file=settings.admin_token_path,
    )
    logs.configure()  # again: the app configured logging its own way
    run_server(api, host, port, access_log=level <= logging.DEBUG)


@app.command()
def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Keep the demo's database, artifacts and logs here (default: a"
            " temporary folder, removed afterwards)."
        ),
    ] = None,
) -> None:
    """Run the whole story in about a minute: kill -9 a training worker, resume it bit-exact,
    stop a backtest with SIGTERM and resume it, run an agent research — real processes."""
    from ktrdr.cli.demo import run_demo

    raise typer.Exit(run_demo(Console(), data_dir))


def main() -> None:
    try:
        app()
    except Exception as exc:
        code = exit_code_of(exc)
        if code is None:
            raise
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(code)


__all__ = ["app", "main"]


if __name__ == "__main__":
    main()
