"""`ktrdr checkpoints`: look at, delete and clean up saved checkpoints over the REST API."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from ktrdr.cli.client import KtrdrApi, exits_on_api_failure
from ktrdr.cli.output import (
    CheckpointType,
    JsonOption,
    OperationIdArgument,
    OperationType,
    UrlOption,
    age,
    api,
    err,
    out,
    page_table,
    print_json,
    resolve_id,
    say,
    short,
    size,
    when,
)

app = typer.Typer(
    help="Saved checkpoints (the points operations resume from): show an operation's,"
    " list them all, delete an operation's, see totals, remove expired ones.",
    no_args_is_help=True,
)


def _name(checkpoint: dict[str, Any]) -> str:
    """ "#3 periodic, epoch 12" (the summary when the state says where it is)."""
    # Imported here: the domain (pydantic models) would double a REST command's start-up.
    from ktrdr.domain import checkpoint_summary

    summary = checkpoint_summary(checkpoint["operation_type"], checkpoint.get("state") or {})
    name = f"#{checkpoint['sequence']} {checkpoint['checkpoint_type']}"
    return f"{name}, {summary}" if summary else name


def _sizes(checkpoint: dict[str, Any]) -> str:
    state, artifacts = checkpoint["state_size_bytes"], checkpoint["artifacts_size_bytes"]
    return f"{size(state + artifacts)} (state {size(state)}, artifacts {size(artifacts)})"


def _gone(checkpoint: dict[str, Any]) -> str:
    return "" if checkpoint.get("resumable", True) else " (files missing: cannot resume)"


def _print_latest(latest: dict[str, Any], history: list[dict[str, Any]]) -> None:
    ordered = sorted(history, key=lambda c: c["sequence"])
    kept = ", ".join(f"#{c['sequence']}{_gone(c)}" for c in ordered)
    for label, value in (
        ("operation", latest["operation_id"]),
        ("latest", _name(latest)),
        ("created", when(latest["created_at"])),
        ("size", _sizes(latest)),
        ("artifacts", f"{len(latest['artifacts'])} file(s) in {latest['artifacts_path'] or '-'}"),
        ("kept", kept or "-"),
    ):
        say(f"{label:<11}{value}")


def _print_details(latest: dict[str, Any], history: list[dict[str, Any]]) -> None:
    say("\nstate:")
    say(json.dumps(latest["state"], indent=2, sort_keys=True))
    say("\nartifacts:")
    for artifact in latest["artifacts"]:
        say(f"  {artifact['name']}  {size(artifact['size'])}  sha256 {artifact['sha256']}")
    say("\nkept checkpoints (resume from one: `ktrdr operations resume ID --from-checkpoint N`):")
    for checkpoint in history:
        when_saved = f"{age(checkpoint['created_at'])} ago"
        say(f"  {_name(checkpoint)}  {when_saved}  {_sizes(checkpoint)}{_gone(checkpoint)}")


@app.command()
@exits_on_api_failure
def show(
    ctx: typer.Context,
    op_id: OperationIdArgument,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Also print the saved state, the files and every kept checkpoint.",
        ),
    ] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show an operation's latest checkpoint: where it is, when it was saved, its size."""
    client = api(ctx, url)
    op_id = resolve_id(client, op_id)
    latest = client.get(f"/checkpoints/{op_id}")
    if as_json:
        print_json(latest)
        return
    history = client.get(f"/checkpoints/{op_id}/history")["items"]
    _print_latest(latest, history)
    if verbose:
        _print_details(latest, history)


def _table(page: dict[str, Any]) -> Table:
    rows = [
        (
            short(c["operation_id"]),
            c["operation_type"],
            f"#{c['sequence']} {c['checkpoint_type']}",
            size(c["total_size_bytes"]),
            age(c["created_at"]),
        )
        for c in page["items"]
    ]
    return page_table(page, ("OPERATION", "TYPE", "CHECKPOINT", "SIZE", "AGE"), rows, right="SIZE")


@app.command("list")
@exits_on_api_failure
def list_checkpoints(
    ctx: typer.Context,
    operation_type: Annotated[
        OperationType | None,
        typer.Option("--type", help="Only operations of this type.", show_default=False),
    ] = None,
    checkpoint_type: Annotated[
        CheckpointType | None,
        typer.Option(
            "--checkpoint-type", help="Only checkpoints saved this way.", show_default=False
        ),
    ] = None,
    older_than_days: Annotated[
        float | None,
        typer.Option(help="Only checkpoints older than this many days.", show_default=False),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Show at most this many.")] = 50,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the latest checkpoint of each operation that has one, newest first."""
    page = api(ctx, url).get(
        "/checkpoints",
        operation_type=operation_type,
        checkpoint_type=checkpoint_type,
        older_than_days=older_than_days,
        limit=limit,
    )
    if as_json:
        print_json(page)
    elif page["items"]:
        out().print(_table(page))
    else:
        say("no checkpoints")


def _confirm_delete(client: KtrdrApi, op_id: str) -> None:
    """Ask first, warning when these checkpoints are the operation's only way to resume."""
    operation = client.get(f"/operations/{op_id}")
    count = client.get(f"/checkpoints/{op_id}/history")["total"]
    if count == 0:
        return  # nothing to ask about: the API says so itself
    question = f"Delete {count} checkpoint(s) of operation {op_id}?"
    if operation["resumable"]:
        question += " It will no longer be resumable."
    if not typer.confirm(question, err=True):
        err.print("aborted", highlight=False)
        raise typer.Exit(1)


@app.command()
@exits_on_api_failure
def delete(
    ctx: typer.Context,
    op_id: OperationIdArgument,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Do not ask for confirmation.")
    ] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete every checkpoint of an operation, and its files (asks first unless --force)."""
    client = api(ctx, url)
    op_id = resolve_id(client, op_id)
    if not force:
        _confirm_delete(client, op_id)
    deleted = client.delete(f"/checkpoints/{op_id}")
    if as_json:
        print_json(deleted)
        return
    sequences = ", ".join(f"#{s}" for s in deleted["deleted_sequences"])
    say(f"deleted checkpoint(s) {sequences} of {op_id}")


@app.command()
@exits_on_api_failure
def stats(ctx: typer.Context, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Totals over every live checkpoint: how many, by type, their sizes, the bytes their
    rows take in the database and their files on disk, and the oldest."""
    totals = api(ctx, url).get("/checkpoints/stats")
    if as_json:
        print_json(totals)
        return
    by_type = ", ".join(f"{kind} {n}" for kind, n in sorted(totals["by_type"].items()))
    state, artifacts = totals["state_size_bytes"], totals["artifacts_size_bytes"]
    say(f"checkpoints {totals['total_checkpoints']}" + (f" ({by_type})" if by_type else ""))
    say(f"operations  {totals['operations']}")
    say(f"size        {size(totals['total_size_bytes'])}")
    say(f"            state {size(state)}, artifacts {size(artifacts)}")
    say(f"database    {size(totals['database_bytes'])} of checkpoint rows")
    say(f"disk        {size(totals['artifacts_on_disk_bytes'])} of artifact files")
    say(f"oldest      {when(totals['oldest_checkpoint'])}")


@app.command()
@exits_on_api_failure
def cleanup(
    ctx: typer.Context,
    max_age_days: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="Delete checkpoints older than this many days."
            " Default: the server's CHECKPOINT_MAX_AGE_DAYS (30).",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete expired checkpoints and leftover artifact folders now (the server does it daily)."""
    report = api(ctx, url).post("/checkpoints/cleanup", max_age_days=max_age_days)
    if as_json:
        print_json(report)
        return
    say(
        f"deleted {report['checkpoints_deleted']} checkpoint(s), removed"
        f" {report['orphan_artifacts_removed']} orphan artifact folder(s),"
        f" freed {size(report['bytes_freed'])}"
    )
    if report["skipped_busy"]:
        say(f"skipped {report['skipped_busy']} operation(s) busy running")
