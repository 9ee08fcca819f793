"""`ktrdr workers`: which workers are alive, what each runs, when each was last heard of."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ktrdr.cli.client import exits_on_api_failure
from ktrdr.cli.output import (
    JsonOption,
    UrlOption,
    api,
    duration,
    out,
    page_table,
    print_json,
    say,
    short,
    status_text,
)

app = typer.Typer(
    help="Worker processes: which are alive, their type, what they run, their last heartbeat.",
    no_args_is_help=True,
)

LIVENESS = {"available": "alive", "busy": "alive", "lost": "lost", "deregistered": "gone"}


def _running(worker: dict[str, Any]) -> str:
    op = worker["current_operation_id"]
    return short(op) if op else "-"


def _table(page: dict[str, Any]) -> Table:
    rows = [
        (
            w["worker_id"],
            w["worker_type"],
            status_text(LIVENESS.get(w["status"], w["status"])),
            _running(w),
            f"{duration(w['heartbeat_age_seconds'])} ago",
        )
        for w in page["items"]
    ]
    columns = ("WORKER", "TYPE", "STATUS", "OPERATION", "HEARTBEAT")
    return page_table(page, columns, rows, right="HEARTBEAT")


@app.command("list")
@exits_on_api_failure
def list_workers(
    ctx: typer.Context,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            "-a",
            help="Also workers that deregistered, and those lost long ago (hidden by default).",
        ),
    ] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List workers: alive or lost, their type, the operation each runs, the age of their
    last heartbeat (a worker is lost once it is silent for the orphan timeout)."""
    flag = True if show_all else None
    page = api(ctx, url).get("/workers", include_deregistered=flag, include_lost=flag)
    if as_json:
        print_json(page)
    elif page["items"]:
        out().print(_table(page))
    else:
        say("no workers: start one with `ktrdr worker training` (or backtesting)")
