"""What the operational commands share: the API options, consoles, and how values read."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import httpx
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ktrdr.cli.client import ApiFailure, KtrdrApi, connect

PIPED_WIDTH = 200
"""Rich assumes 80 columns when stdout is not a terminal, which would fold full ids."""

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Base URL of the ktrdr API. Default: KTRDR_API_URL, else http://127.0.0.1:8000.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print the raw JSON the API returned and nothing else."),
]


class OperationType(StrEnum):
    """The API's operation types (a unit test pins them to ktrdr.api.schemas): as a Click
    choice they tab-complete, and a wrong one is refused naming the valid ones."""

    training = "training"
    backtesting = "backtesting"
    agent_research = "agent_research"


class Status(StrEnum):
    pending = "pending"
    resuming = "resuming"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


class CheckpointType(StrEnum):
    periodic = "periodic"
    cancellation = "cancellation"
    failure = "failure"
    shutdown = "shutdown"


SHORT_ID = 8
"""Tables show ids this long; any unique prefix is accepted back, as git and docker do."""
HEX = frozenset("0123456789abcdef")


def parse_operation_id(raw: str) -> str:
    """A whole id in canonical form, or the prefix of one (hex digits, dashes allowed)."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        pass
    text = raw.strip().lower()
    digits = text.replace("-", "")
    if digits and set(digits) <= HEX and len(digits) < 32:
        return text
    raise typer.BadParameter(
        f"{raw!r} is not an operation id (a UUID, or its first hex digits as"
        " `ktrdr operations list` shows them)"
    ) from None


OperationIdArgument = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        parser=parse_operation_id,
        help="The operation's id, or any unique prefix of it (as `ktrdr operations list`"
        " shows it).",
        show_default=False,
    ),
]


class UnresolvedId(ApiFailure):
    """No operation has an id that starts with the prefix given, or more than one has."""


def short(op_id: str) -> str:
    return op_id[:SHORT_ID]


def _match_line(op: dict[str, Any]) -> str:
    created = age(op["created_at"])
    return f"  {op['operation_id']}  {op['operation_type']}  {op['status']}  {created}"


def resolve_id(client: KtrdrApi, op_id: str) -> str:
    """The whole id of the one operation whose id starts with ``op_id``."""
    if len(op_id) == 36:
        return op_id
    return the_one(op_id, client.get("/operations", id_prefix=op_id, limit=MATCHES_SHOWN))


MATCHES_SHOWN = 10


def the_one(op_id: str, page: dict[str, Any]) -> str:
    """The id of the only operation on a page listed by id prefix, else UnresolvedId."""
    items = page["items"]
    if not items:
        raise UnresolvedId(f"no operation id starts with {op_id!r}")
    if len(items) > 1:
        more = f"\n  … and {page['total'] - len(items)} more" if page["total"] > len(items) else ""
        matches = "\n".join(_match_line(op) for op in items)
        raise UnresolvedId(
            f"{op_id!r} is ambiguous: {page['total']} operation ids start with it;"
            f" give more digits:\n{matches}{more}"
        )
    return str(items[0]["operation_id"])


err = Console(stderr=True)


def api(ctx: typer.Context, url: str | None) -> KtrdrApi:
    """The API for this command, closed when it ends (tests put an httpx.Client in ctx.obj)."""
    http = ctx.obj if isinstance(ctx.obj, httpx.Client) else None
    return ctx.with_resource(connect(url, http))


def out() -> Console:
    console = Console()
    if console.is_terminal or "COLUMNS" in os.environ:
        return console
    return Console(width=PIPED_WIDTH)


def say(text: str) -> None:
    """One plain line on stdout (no markup: ids and messages are printed as they are)."""
    out().print(text, markup=False, highlight=False, soft_wrap=True)


def print_json(body: Any) -> None:
    typer.echo(json.dumps(body, indent=2))


def age(iso: str | None, now: datetime | None = None) -> str:
    """How long ago, in the largest whole unit: "45s", "3m", "2h", "5d"."""
    if not iso:
        return "-"
    return duration(((now or datetime.now(UTC)) - datetime.fromisoformat(iso)).total_seconds())


def duration(seconds: float) -> str:
    """Seconds in the largest whole unit: "45s", "3m", "2h", "5d"."""
    whole = max(0, int(seconds))
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= length:
            return f"{whole // length}{unit}"
    return f"{whole}s"


def clock(seconds: float) -> str:
    """Seconds as a stopwatch reads: "0:42", "12:05", "3:02:17"."""
    minutes, secs = divmod(max(0, int(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def size(n: int) -> str:
    """Bytes in the largest unit that keeps the number at or above 1: "512 B", "1.5 MB"."""
    value, unit = float(n), "B"
    for bigger in ("KB", "MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"


def when(iso: str | None) -> str:
    return "-" if not iso else f"{age(iso)} ago ({iso})"


def compact(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, separators=(", ", ": "), sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def checkpoint_brief(checkpoint: dict[str, Any] | None) -> str:
    """An operation's latest checkpoint as the API summarises it: "epoch 12", else "#3"."""
    if not checkpoint:
        return "-"
    return str(checkpoint.get("summary") or f"#{checkpoint['sequence']}")


STATUS_STYLES = {
    "pending": "blue",
    "resuming": "magenta",
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
    "alive": "green",
    "lost": "red",
    "gone": "dim",
}
# By the end of the event type's name: the outcome reads at a glance.
EVENT_STYLES = (
    (("Failed", "Missed", "Lost", "Expired"), "red"),
    (("Completed", "Acknowledged", "Registered"), "green"),
    (("Cancelled", "CancellationRequested", "Deregistered", "Deleted"), "yellow"),
    (("Saved", "Checkpointed"), "blue"),
    (("Claimed", "Started", "Resumed", "Requested"), "cyan"),
    (("Scheduled",), "magenta"),
)
FIXED_WIDTH = frozenset(
    {"ID", "OPERATION", "WORKER", "STATUS", "PROGRESS", "SIZE", "AGE", "HEARTBEAT"}
)
"""Short columns that never wrap; every other column folds, so a table fits 80 columns."""


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status.split(",")[0], ""))


def event_text(event_type: str) -> Text:
    style = next((s for ends, s in EVENT_STYLES if event_type.endswith(ends)), "")
    return Text(event_type, style=style)


def page_table(
    page: dict[str, Any],
    columns: tuple[str, ...],
    rows: Iterable[Sequence[str | Text]],
    *,
    right: str = "",
) -> Table:
    """A listing page as a table, captioned "N of TOTAL" when the page is not all of it."""
    shown = len(page["items"])
    caption = f"{shown} of {page['total']}" if page["total"] > shown else None
    table = Table(box=box.SIMPLE_HEAD, caption=caption, caption_justify="left")
    for name in columns:
        fixed = name in FIXED_WIDTH
        table.add_column(
            name,
            no_wrap=fixed,
            overflow="ellipsis" if fixed else "fold",
            justify="right" if name == right else "left",
        )
    for row in rows:
        table.add_row(*(Text(c) if isinstance(c, str) else c for c in row))
    return table
