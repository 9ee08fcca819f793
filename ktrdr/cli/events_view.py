"""How `ktrdr events` reads to a person: log lines, timelines and states."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from ktrdr.cli.output import event_text, status_text
from ktrdr.eventlog import RecordedEvent
from ktrdr.projections import timeline, views


def tail_line(event: RecordedEvent) -> str:
    fields = timeline.fields_line(timeline.key_fields(event))
    return (
        f"{timeline.stamp(event.recorded_at)}  #{event.global_position:<7}"
        f" {event.stream_id:<46} {event.event_type:<21} {fields}".rstrip()
    )


_COLUMNS_SHOWN_APART = ("attempt", "worker_id")


def _clock(events: list[RecordedEvent]) -> Callable[[RecordedEvent], str]:
    """The time of day alone when every event is of one UTC day (the line above the table
    gives the dates), so that the table fits 80 columns; else the whole stamp."""
    first, last = timeline.stamp(events[0].recorded_at), timeline.stamp(events[-1].recorded_at)
    if first[:10] == last[:10]:
        return lambda event: timeline.stamp(event.recorded_at)[11:]
    return lambda event: timeline.stamp(event.recorded_at)


def _table(*columns: str, fixed: tuple[str, ...]) -> Table:
    """Fixed columns never wrap; the others fold, so that nothing is cut at 80 columns."""
    table = Table(box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for name in columns:
        table.add_column(
            name,
            no_wrap=name in fixed,
            overflow="ellipsis" if name in fixed else "fold",
            justify="right" if name == "V" else "left",
        )
    return table


def timeline_table(events: list[RecordedEvent]) -> Table:
    table = _table("V", "TIME", "TYPE", "ATT", "WORKER", "DETAILS", fixed=("V", "TYPE", "ATT"))
    clock = _clock(events)
    for event in events:
        fields = timeline.key_fields(event)
        details = {k: v for k, v in fields.items() if k not in _COLUMNS_SHOWN_APART}
        attempt = timeline.attempt_of(event)
        table.add_row(
            str(event.stream_version),
            clock(event),
            event_text(event.event_type),
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
    columns = ("V", "TIME", "EVENT", "STATUS", "ATT", "WORKER", "PROGRESS", "CHECKPOINT", "NOTE")
    table = _table(*columns, fixed=("V", "EVENT", "STATUS", "ATT"))
    clock = _clock([step.event for step in steps])
    for step in steps:
        op = views.state_json(step.state)
        table.add_row(
            str(step.event.stream_version),
            clock(step.event),
            event_text(step.event.event_type),
            status_text(op["status"]),
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
