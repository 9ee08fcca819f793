"""Follow an operation: poll it and draw a progress bar until it reaches a terminal status."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from ktrdr.cli.client import KtrdrApi
from ktrdr.cli.output import err, print_json, say

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
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[step]}", markup=False),
        console=err,
        auto_refresh=False,
    )


def _step(operation: dict[str, Any]) -> str:
    progress = operation["progress"]
    parts = [progress.get("current_step"), progress.get("message")]
    return " · ".join(str(p) for p in parts if p)


def _show(bar: Progress, task: TaskID, operation: dict[str, Any], last_status: str) -> None:
    if operation["status"] != last_status:
        bar.console.print(f"status: {operation['status']}", markup=False, highlight=False)
    bar.update(
        task,
        description=operation["status"],
        completed=operation["progress"]["percentage"],
        step=_step(operation),
    )
    bar.refresh()


def follow(api: KtrdrApi, op_id: str, *, interval: float, timeout: float | None) -> dict[str, Any]:
    """Poll GET /operations/{id} until a terminal status; exit 1 once ``timeout`` passes."""
    started = time.monotonic()
    operation: dict[str, Any] = api.get(f"/operations/{op_id}")  # an unknown id fails here
    last_status = ""
    with _bar() as bar:
        task = bar.add_task(operation["status"], total=100, step="")
        while True:
            _show(bar, task, operation, last_status)
            last_status = operation["status"]
            if last_status in TERMINAL:
                return operation
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise _stop_watching(operation, timeout)
            time.sleep(interval if timeout is None else min(interval, timeout - waited))
            operation = api.get(f"/operations/{op_id}")


def report_final(operation: dict[str, Any], *, as_json: bool) -> None:
    """Print how the operation ended; exit 1 unless it completed."""
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
