"""What the operational commands share: the API options, consoles, and how values read."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import typer
from rich import box
from rich.console import Console
from rich.table import Table

from ktrdr.cli.client import KtrdrApi, connect
from ktrdr.domain import canonical_uuid

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


def _operation_id(raw: str) -> str:
    try:
        return canonical_uuid(raw)
    except ValueError:
        raise typer.BadParameter(f"{raw!r} is not an operation id (a UUID)") from None


OperationIdArgument = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        parser=_operation_id,
        help="The operation's id, a UUID as `ktrdr operations list` shows it.",
        show_default=False,
    ),
]

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
    seconds = max(
        0, int(((now or datetime.now(UTC)) - datetime.fromisoformat(iso)).total_seconds())
    )
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"


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


def page_table(
    page: dict[str, Any],
    columns: tuple[str, ...],
    rows: Iterable[Sequence[str]],
    *,
    right: str = "",
) -> Table:
    """A listing page as a table, captioned "N of TOTAL" when the page is not all of it."""
    shown = len(page["items"])
    caption = f"{shown} of {page['total']}" if page["total"] > shown else None
    table = Table(box=box.SIMPLE_HEAD, caption=caption, caption_justify="left")
    for name in columns:
        table.add_column(name, no_wrap=True, justify="right" if name == right else "left")
    for row in rows:
        table.add_row(*row)
    return table
