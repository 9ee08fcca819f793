"""Follow an operation: poll it and draw a progress bar until it reaches a terminal status."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.table import Column

from ktrdr.cli.client import KtrdrApi
from ktrdr.cli.output import checkpoint_brief, clock, compact, err, print_json, say

TERMINAL = frozenset({"completed", "failed", "cancelled"})

IntervalOption = Annotated[
    float,
    typer.Option("--interval", min=0.05, help="Seconds between two looks at the operation."),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=0,
        help="Stop watching after this many seconds (exit 1; the operation carries on)."
        " Default: watch until the operation finishes.",
        show_default=False,
    ),
]


def _stop_watching(operation: dict[str, Any], waited: float) -> typer.Exit:
    op_id, status = operation["operation_id"], operation["status"]
    err.print(
        f"error: stopped watching after {waited:g}s: {op_id} is still {status}"
        f" (it carries on; `ktrdr operations watch {op_id}` to look again)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return typer.Exit(1)


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),  # room beside it for the step, loss, elapsed time and ETA
        TaskProgressColumn(),
        # Wrapped, not cut, in a narrow terminal.
        TextColumn("{task.fields[step]}", markup=False, table_column=Column(overflow="fold")),
        console=err,
        auto_refresh=False,
    )


LOSSES = ("val_loss", "train_loss", "running_loss")


def latest_value(progress: dict[str, Any]) -> str | None:
    """The latest loss of a training run, or the portfolio value of a backtest."""
    details = progress.get("details") or {}
    loss = next((name for name in LOSSES if details.get(name) is not None), None)
    if loss is not None:
        return f"{loss} {details[loss]:.4g}"
    if details.get("portfolio_value") is not None:
        return f"portfolio {details['portfolio_value']:,.2f}"
    return None


def _seconds_since(iso: str | None) -> float | None:
    if not iso:
        return None
    return (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()


class Pace:
    """The ETA: the workload's own when it gives one, else from the progress seen so far."""

    def __init__(self) -> None:
        self.first: tuple[float, float] | None = None

    def eta(self, operation: dict[str, Any]) -> float | None:
        progress = operation["progress"]
        given = (progress.get("details") or {}).get("eta_seconds")
        if given is not None:
            return float(given)
        if operation["status"] != "running":
            self.first = None
            return None
        now, done = time.monotonic(), float(progress["percentage"])
        if self.first is None or done < self.first[1]:
            self.first = (now, done)
            return None
        since, done_then = self.first
        rate = (done - done_then) / (now - since) if now > since else 0.0
        return (100.0 - done) / rate if rate > 0 else None


def step_line(operation: dict[str, Any], eta: float | None) -> str:
    """What the bar says beside itself: step, message, loss or value, elapsed time, ETA."""
    progress = operation["progress"]
    elapsed = _seconds_since(operation.get("started_at"))
    parts = [
        progress.get("current_step"),
        progress.get("message"),
        latest_value(progress),
        f"{clock(elapsed)} elapsed" if elapsed is not None else None,
        f"ETA {clock(eta)}" if eta is not None and operation["status"] == "running" else None,
    ]
    return " · ".join(str(p) for p in parts if p)


def _show(
    bar: Progress, task: TaskID, operation: dict[str, Any], last_status: str, pace: Pace
) -> None:
    if operation["status"] != last_status:
        bar.console.print(f"status: {operation['status']}", markup=False, highlight=False)
    bar.update(
        task,
        description=operation["status"],
        completed=operation["progress"]["percentage"],
        step=step_line(operation, pace.eta(operation)),
    )
    bar.refresh()


def follow(api: KtrdrApi, op_id: str, *, interval: float, timeout: float | None) -> dict[str, Any]:
    """Poll GET /operations/{id} until a terminal status; exit 1 once ``timeout`` passes."""
    started = time.monotonic()
    operation: dict[str, Any] = api.get(f"/operations/{op_id}")  # an unknown id fails here
    last_status, pace = "", Pace()
    with _bar() as bar:
        task = bar.add_task(operation["status"], total=100, step="")
        while True:
            _show(bar, task, operation, last_status, pace)
            last_status = operation["status"]
            if last_status in TERMINAL:
                return operation
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise _stop_watching(operation, timeout)
            time.sleep(interval if timeout is None else min(interval, timeout - waited))
            operation = api.get(f"/operations/{op_id}")


def _took(operation: dict[str, Any]) -> str:
    started, finished = operation.get("started_at"), operation.get("completed_at")
    if not started or not finished:
        return "-"
    seconds = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    return clock(seconds)


def summary_lines(operation: dict[str, Any]) -> list[str]:
    """How a followed operation ended, on one screen."""
    progress, error = operation["progress"], operation.get("error")
    policy = operation.get("retry_policy") or {}
    attempts = operation.get("attempts_used", operation["attempt"])
    fields = [
        ("operation", f"{operation['operation_id']} ({operation['operation_type']})"),
        ("status", operation["status"] + (", resumable" if operation.get("resumable") else "")),
        ("attempts", f"{attempts} of {policy.get('max_attempts', attempts)}"),
        ("worker", operation.get("worker_id") or "-"),
        ("took", _took(operation)),
        (
            "progress",
            " · ".join(
                str(p)
                for p in (
                    f"{progress['percentage']:.0f}%",
                    progress.get("current_step"),
                    progress.get("message"),
                )
                if p
            ),
        ),
        ("latest", latest_value(progress) or "-"),
        ("checkpoint", checkpoint_brief(operation.get("checkpoint"))),
    ]
    if error:
        fields.append(("error", f"{error['message']} ({error['reason']})"))
    if operation.get("result") is not None:
        fields.append(("result", compact(operation["result"], 200)))
    return [f"{label:<11}{value}" for label, value in fields]


def report_final(operation: dict[str, Any], *, as_json: bool) -> None:
    """Print how the operation ended (a summary on stderr, the outcome on stdout); exit 1
    unless it completed."""
    for line in summary_lines(operation):
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    status = operation["status"]
    if as_json:
        print_json(operation)
    elif status == "failed" and operation["error"]:
        error = operation["error"]
        say(f"{operation['operation_id']} failed: {error['message']} ({error['reason']})")
    else:
        say(f"{operation['operation_id']} {status}")
    if status != "completed":
        raise typer.Exit(1)
