"""How `ktrdr events` reads to a person: log lines, timelines and states."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from ktrdr.eventlog import RecordedEvent
from ktrdr.projections import timeline, views


def tail_line(event: RecordedEvent) -> str:
    fields = timeline.fields_line(timeline.key_fields(event))
    return (
        f"{timeline.stamp(event.recorded_at)}  #{event.global_position:<7}"
        f" {event.stream_id:<46} {event.event_type:<21} {fields}".rstrip()
    )


_COLUMNS_SHOWN_APART = ("attempt", "worker_id")


def timeline_table(events: list[RecordedEvent]) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    for name in ("VERSION", "TIME", "TYPE", "ATTEMPT", "WORKER"):
        table.add_column(name, no_wrap=True, justify="right" if name == "VERSION" else "left")
    table.add_column("DETAILS", overflow="fold")
    for event in events:
        fields = timeline.key_fields(event)
        details = {k: v for k, v in fields.items() if k not in _COLUMNS_SHOWN_APART}
        attempt = timeline.attempt_of(event)
        table.add_row(
            str(event.stream_version),
            timeline.stamp(event.recorded_at),
            event.event_type,
            "-" if attempt is None else str(attempt),
            Text(timeline.worker_of(event) or "-"),
            Text(timeline.fields_line(details)),
        )
    return table


def _progress(op: dict[str, Any]) -> str:
    progress = op["progress"]
    parts = [f"{progress['percentage']:g}%", progress.get("current_step"), progress.get("message")]
    return " · ".join(str(p) for p in parts if p)


def _checkpoint(op: dict[str, Any]) -> str:
    checkpoint = op["checkpoint"]
    if not checkpoint:
        return "-"
    parts = [f"#{checkpoint['sequence']}", checkpoint["checkpoint_type"], checkpoint["summary"]]
    return " ".join(p for p in parts if p)


def _note(op: dict[str, Any]) -> str:
    notes = []
    if op["error"]:
        notes.append(f"{op['error']['reason']}: {op['error']['message']}")
    if op["cancellation_requested"]:
        notes.append("cancellation requested")
    if op["result"] is not None:
        notes.append(f"result {timeline.render(op['result'], 40)}")
    if op["resumable"]:
        notes.append("resumable")
    return "; ".join(notes)


def steps_table(steps: list[timeline.Step]) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    for name in ("VERSION", "TIME", "EVENT", "STATUS", "ATTEMPT", "WORKER", "PROGRESS"):
        table.add_column(name, no_wrap=True, justify="right" if name == "VERSION" else "left")
    table.add_column("CHECKPOINT", no_wrap=True)
    table.add_column("NOTE", overflow="fold")
    for step in steps:
        op = views.state_json(step.state)
        table.add_row(
            str(step.event.stream_version),
            timeline.stamp(step.event.recorded_at),
            step.event.event_type,
            op["status"],
            str(op["attempt"]),
            Text(op["worker_id"] or "-"),
            Text(_progress(op)),
            Text(_checkpoint(op)),
            Text(_note(op)),
        )
    return table


def state_lines(step: timeline.Step, last_version: int) -> list[str]:
    """The state after one event, a field per line."""
    op, event = views.state_json(step.state), step.event
    worker = f" (worker {op['worker_id']})" if op["worker_id"] else ""
    status = op["status"] + (", cancellation requested" if op["cancellation_requested"] else "")
    fields = {
        "event": f"{event.event_type}, recorded {timeline.stamp(event.recorded_at)}",
        "status": status,
        "attempt": f"{op['attempt']}{worker}",
        "progress": _progress(op),
        "checkpoint": _checkpoint(op),
        "resumable": "yes" if op["resumable"] else "no",
        "error": f"{op['error']['reason']}: {op['error']['message']}" if op["error"] else "-",
        "result": "-" if op["result"] is None else timeline.render(op["result"], 100),
    }
    title = (
        f"operation {op['operation_id']} ({op['operation_type']}) as of version"
        f" {event.stream_version} of {last_version}"
    )
    return [title, *(f"  {name:<11} {value}" for name, value in fields.items())]
