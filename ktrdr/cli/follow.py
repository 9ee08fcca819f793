"""Follow an operation: poll it and draw a progress bar until it reaches a terminal status."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from ktrdr.cli.client import KtrdrApi
from ktrdr.cli.output import err, print_json, say
from ktrdr.contracts import OperationView

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


def _stop_watching(operation: OperationView, waited: float) -> typer.Exit:
    op_id, status = operation.operation_id, operation.status
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
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[step]}", markup=False),
        console=err,
        auto_refresh=False,
    )


def _step(operation: OperationView) -> str:
    parts = [operation.progress.current_step, operation.progress.message]
    return " · ".join(p for p in parts if p)


def _show(bar: Progress, task: TaskID, operation: OperationView, last_status: str) -> None:
    if operation.status != last_status:
        bar.console.print(f"status: {operation.status}", markup=False, highlight=False)
    bar.update(
        task,
        description=operation.status,
        completed=operation.progress.percentage,
        step=_step(operation),
    )
    bar.refresh()


def follow(api: KtrdrApi, op_id: str, *, interval: float, timeout: float | None) -> OperationView:
    """Poll GET /operations/{id} until a terminal status; exit 1 once ``timeout`` passes."""
    started = time.monotonic()
    path = f"/operations/{op_id}"
    operation = api.call(OperationView, "GET", path)  # an unknown id fails here
    last_status = ""
    with _bar() as bar:
        task = bar.add_task(operation.status, total=100, step="")
        while True:
            _show(bar, task, operation, last_status)
            last_status = operation.status
            if last_status in TERMINAL:
                return operation
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise _stop_watching(operation, timeout)
            time.sleep(interval if timeout is None else min(interval, timeout - waited))
            operation = api.call(OperationView, "GET", path)


def report_final(operation: OperationView, *, as_json: bool) -> None:
    """Print how the operation ended; exit 1 unless it completed."""
    status = operation.status
    if as_json:
        print_json(operation.model_dump(mode="json"))
    elif status == "failed" and operation.error:
        error = operation.error
        say(f"{operation.operation_id} failed: {error.message} ({error.reason})")
    else:
        say(f"{operation.operation_id} {status}")
    if status != "completed":
        raise typer.Exit(1)
