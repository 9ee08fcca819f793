"""`ktrdr operations`: start, list, show, cancel, resume and watch operations over the REST API."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from ktrdr.cli.client import exits_on_api_failure
from ktrdr.cli.follow import IntervalOption, TimeoutOption, follow, report_final
from ktrdr.cli.metrics import metric_lines
from ktrdr.cli.operation_params import params
from ktrdr.cli.output import (
    JsonOption,
    OperationIdArgument,
    OperationType,
    Status,
    UrlOption,
    age,
    api,
    checkpoint_brief,
    compact,
    out,
    page_table,
    print_json,
    resolve_id,
    say,
    short,
    status_text,
    when,
)

app = typer.Typer(
    help="Long-running operations (training, backtesting, agent research): start one, list"
    " them, look at one, cancel it, resume it from a checkpoint, watch its progress.",
    no_args_is_help=True,
)
app.command("params")(params)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _value(text: str) -> Any:
    """JSON when it parses (numbers, true/false, null, lists, objects), else the text itself."""
    try:
        return json.loads(text, parse_constant=_no_constants)
    except ValueError:
        return text


def _pair(raw: str) -> tuple[str, Any]:
    key, sep, value = raw.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"{raw!r} is not KEY=VALUE", param_hint="--param")
    return key, _value(value)


def _object(raw: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw, parse_constant=_no_constants)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--params-json") from None
    if not isinstance(parsed, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--params-json")
    return parsed


def parse_params(pairs: list[str], params_json: str | None) -> dict[str, Any]:
    """--params-json first, then each --param over it."""
    params = _object(params_json) if params_json is not None else {}
    return params | dict(_pair(p) for p in pairs)


@app.command()
@exits_on_api_failure
def start(
    ctx: typer.Context,
    operation_type: Annotated[
        OperationType,
        typer.Argument(
            metavar="TYPE",
            help="What to run: training, backtesting or agent_research.",
            show_default=False,
        ),
    ],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="KEY=VALUE",
            help="A parameter; repeat for more. VALUE is read as JSON when it parses"
            " (5, 0.1, true, [1,2], {...}), else as text. `ktrdr operations params TYPE`"
            " lists the params of TYPE with their defaults.",
            show_default=False,
        ),
    ] = None,
    params_json: Annotated[
        str | None,
        typer.Option(
            "--params-json",
            metavar="JSON",
            help="All parameters as one JSON object; --param values override its keys.",
            show_default=False,
        ),
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Attempts it may start in all, retries included; 1: a person resumes it"
            " after an interruption (default: KTRDR_RETRY_MAX_ATTEMPTS, else 5).",
            show_default=False,
            rich_help_panel="Retries",
        ),
    ] = None,
    initial_interval: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Seconds before the first retry"
            " (default: KTRDR_RETRY_INITIAL_INTERVAL_SECONDS, else 1).",
            show_default=False,
            rich_help_panel="Retries",
        ),
    ] = None,
    backoff_coefficient: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="Each retry waits this many times longer than the last"
            " (default: KTRDR_RETRY_BACKOFF_COEFFICIENT, else 2).",
            show_default=False,
            rich_help_panel="Retries",
        ),
    ] = None,
    maximum_interval: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="The longest wait between retries, in seconds"
            " (default: KTRDR_RETRY_MAXIMUM_INTERVAL_SECONDS, else 60).",
            show_default=False,
            rich_help_panel="Retries",
        ),
    ] = None,
    retry_on_error: Annotated[
        bool,
        typer.Option(
            "--retry-on-error",
            help="Also retry a run the workload failed (never one with invalid params).",
            rich_help_panel="Retries",
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Fail it (reason timeout, not retried) this many seconds after it started.",
            show_default=False,
        ),
    ] = None,
    keep_checkpoints: Annotated[
        bool,
        typer.Option(
            "--keep-checkpoints",
            help="Keep its checkpoints once it completes (by default they are deleted then).",
        ),
    ] = False,
    follow_it: Annotated[
        bool,
        typer.Option("--follow", help="Then watch it, as `watch` does, until it finishes."),
    ] = False,
    interval: IntervalOption = 0.5,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an operation; it waits as `pending` until a worker picks it up. An
    interrupted run (a worker died or shut down) is retried by itself under its retry
    policy and ends exactly as an uninterrupted one."""
    policy = {
        "max_attempts": max_attempts,
        "initial_interval_seconds": initial_interval,
        "backoff_coefficient": backoff_coefficient,
        "maximum_interval_seconds": maximum_interval,
        "retry_on_error": retry_on_error or None,
    }
    body = {
        "operation_type": operation_type,
        "params": parse_params(param or [], params_json),
        "retry_policy": {k: v for k, v in policy.items() if v is not None},
        "timeout_seconds": timeout,
        "keep_checkpoints": keep_checkpoints or None,
    }
    client = api(ctx, url)
    created = client.post("/operations", json={k: v for k, v in body.items() if v is not None})
    op_id = created["operation_id"]
    if as_json and not follow_it:
        print_json(created)
    elif not as_json:
        say(f"created {op_id} ({created['operation_type']}, {created['status']})")
    if follow_it:
        report_final(follow(client, op_id, interval=interval, timeout=None), as_json=as_json)
    elif not as_json:
        say(f"follow it with: ktrdr operations watch {short(op_id)}")


def _table(page: dict[str, Any]) -> Table:
    rows = [
        (
            short(op["operation_id"]),
            op["operation_type"],
            status_text(op["status"]),
            f"{op['progress']['percentage']:.0f}%",
            checkpoint_brief(op["checkpoint"]),
            age(op["created_at"]),
        )
        for op in page["items"]
    ]
    columns = ("ID", "TYPE", "STATUS", "PROGRESS", "CHECKPOINT", "AGE")
    return page_table(page, columns, rows, right="PROGRESS")


@app.command("list")
@exits_on_api_failure
def list_operations(
    ctx: typer.Context,
    status: Annotated[
        Status | None,
        typer.Option(help="Only operations with this status.", show_default=False),
    ] = None,
    operation_type: Annotated[
        OperationType | None,
        typer.Option("--type", help="Only operations of this type.", show_default=False),
    ] = None,
    resumable: Annotated[
        bool,
        typer.Option("--resumable", help="Only operations that can be resumed now (see `resume`)."),
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Show at most this many.")] = 50,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """List operations, newest first, with their progress and latest checkpoint."""
    page = api(ctx, url).get(
        "/operations",
        status=status,
        operation_type=operation_type,
        resumable=True if resumable else None,
        limit=limit,
    )
    if as_json:
        print_json(page)
    elif page["items"]:
        out().print(_table(page))
    else:
        say("no operations")


def _progress(progress: dict[str, Any]) -> str:
    parts = [
        f"{progress['percentage']:.0f}%",
        progress.get("current_step"),
        progress.get("message"),
    ]
    return " · ".join(str(p) for p in parts if p)


def _checkpoint(checkpoint: dict[str, Any] | None) -> str:
    if not checkpoint:
        return "-"
    kind, created = checkpoint["checkpoint_type"], age(checkpoint["created_at"])
    return f"{checkpoint_brief(checkpoint)} (#{checkpoint['sequence']}, {kind}, {created} ago)"


def _status(op: dict[str, Any]) -> str:
    notes = [op["status"]]
    if op["resumable"]:
        notes.append("resumable")
    if op["cancellation_requested"] and op["status"] not in ("cancelled", "failed", "completed"):
        notes.append("cancellation requested")
    return ", ".join(notes)


def _retries(op: dict[str, Any]) -> str:
    policy = op.get("retry_policy") or {}
    started = f"{op.get('attempts_used', 0)} of {policy.get('max_attempts', 1)} attempts started"
    waiting = op.get("next_retry_at")
    return f"{started}; next retry {when(waiting)}" if waiting else started


def _unsaved(failure: dict[str, Any]) -> str:
    return f"checkpoint {failure['sequence']} not saved: {failure['message']}"


def _fields(op: dict[str, Any]) -> list[tuple[str, str]]:
    error = op["error"]
    fields = [
        ("operation", op["operation_id"]),
        ("type", op["operation_type"]),
        ("status", _status(op)),
        ("attempt", str(op["attempt"])),
        ("retries", _retries(op)),
        ("worker", op["worker_id"] or "-"),
        ("progress", _progress(op["progress"])),
        ("checkpoint", _checkpoint(op["checkpoint"])),
        ("error", f"{error['message']} ({error['reason']})" if error else "-"),
        ("result", compact(op["result"]) if op["result"] is not None else "-"),
        ("params", compact(op["params"])),
        ("parent", op["parent_operation_id"] or "-"),
        ("created", when(op["created_at"])),
        ("started", when(op["started_at"])),
        ("finished", when(op["completed_at"])),
    ]
    if op.get("checkpoint_failure"):
        fields.insert(8, ("unsaved", _unsaved(op["checkpoint_failure"])))
    if op.get("waiting_reason"):
        fields.insert(3, ("waiting", op["waiting_reason"]))
    return fields


@app.command()
@exits_on_api_failure
def show(
    ctx: typer.Context,
    op_id: OperationIdArgument,
    metrics: Annotated[
        bool,
        typer.Option(
            "--metrics",
            "-m",
            help="Also draw the loss curves of a training run, the equity of a backtest.",
        ),
    ] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one operation: status, attempt, worker, progress, checkpoint, error, result."""
    client = api(ctx, url)
    op_id = resolve_id(client, op_id)
    op = client.get(f"/operations/{op_id}")
    series = client.get(f"/operations/{op_id}/metrics")["series"] if metrics else None
    if as_json:
        print_json(op if series is None else op | {"metrics": series})
        return
    for label, value in _fields(op):
        say(f"{label:<11}{value}")
    if series is not None:
        for line in metric_lines(series):
            say(line)


@app.command()
@exits_on_api_failure
def cancel(
    ctx: typer.Context,
    op_id: OperationIdArgument,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel an operation: at once if pending, else its worker stops at its next check."""
    client = api(ctx, url)
    op_id = resolve_id(client, op_id)
    op = client.post(f"/operations/{op_id}/cancel")
    if as_json:
        print_json(op)
    elif op["status"] == "cancelled":
        say(f"cancelled {op_id}")
    else:
        say(
            f"cancellation requested: {op_id} is {op['status']}; its worker stops at its next check"
        )


class ResumeDevice(StrEnum):
    cpu = "cpu"
    cuda = "cuda"


@app.command()
@exits_on_api_failure
def resume(
    ctx: typer.Context,
    op_id: OperationIdArgument,
    from_checkpoint: Annotated[
        int | None,
        typer.Option(
            "--from-checkpoint",
            metavar="N",
            min=1,
            help="Resume from checkpoint number N (see `ktrdr checkpoints show`)."
            " Default: the latest.",
            show_default=False,
        ),
    ] = None,
    device: Annotated[
        ResumeDevice | None,
        typer.Option(
            help="Training: resume on this device instead of the one its params name."
            " Default: the checkpoint's.",
            show_default=False,
        ),
    ] = None,
    allow_device_change: Annotated[
        bool,
        typer.Option(
            "--allow-device-change",
            help="Accept a resume on another device than the checkpoint's; the result is"
            " then marked not exact.",
        ),
    ] = False,
    follow_it: Annotated[
        bool,
        typer.Option("--follow", help="Then watch it, as `watch` does, until it finishes."),
    ] = False,
    interval: IntervalOption = 0.5,
    timeout: TimeoutOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resume a failed or cancelled operation from a checkpoint; a worker picks it up again."""
    client = api(ctx, url)
    op_id = resolve_id(client, op_id)
    asked = {
        "checkpoint_sequence": from_checkpoint,
        "device": device.value if device else None,
        "allow_device_change": allow_device_change or None,
    }
    body = {key: value for key, value in asked.items() if value is not None} or None
    resumed = client.post(f"/operations/{op_id}/resume", json=body)
    if as_json and not follow_it:
        print_json(resumed)
    elif not as_json:
        say(_resumed(resumed))
    if follow_it:
        report_final(follow(client, op_id, interval=interval, timeout=timeout), as_json=as_json)


def _resumed(resumed: dict[str, Any]) -> str:
    source = resumed["resumed_from"]
    where = f" ({source['summary']})" if source["summary"] else ""
    device = f" on {resumed['device']}" if resumed.get("device") else ""
    return (
        f"resuming {resumed['operation_id']} from checkpoint #{source['sequence']}{where}{device}"
    )


@app.command()
@exits_on_api_failure
def watch(
    ctx: typer.Context,
    op_id: OperationIdArgument,
    interval: IntervalOption = 0.5,
    timeout: TimeoutOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a live progress bar until the operation completes (exit 0) or fails (exit 1)."""
    client = api(ctx, url)
    operation = follow(client, resolve_id(client, op_id), interval=interval, timeout=timeout)
    report_final(operation, as_json=as_json)
