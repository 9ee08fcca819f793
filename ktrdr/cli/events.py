"""`ktrdr events`: what happened to an operation, and when — straight from the event log.

These commands read the database (KTRDR_DATABASE_URL, else the embedded one),
not the REST API, so they work while the server is down.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer

from ktrdr.cli.errors import exits_cleanly
from ktrdr.cli.output import (
    MATCHES_SHOWN,
    OperationIdArgument,
    UnresolvedId,
    err,
    out,
    print_json,
    say,
    the_one,
)

if TYPE_CHECKING:
    from ktrdr.bootstrap import debugging
    from ktrdr.eventlog import EventLog, Position, RecordedEvent
    from ktrdr.projections import timeline

# The database stack (psycopg, the event log, the projections) and asyncio are imported in
# the functions that use them: loading them here would cost every other command.

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    help="Debug from the event log itself: tail it live, read one operation's events as a"
    " timeline, replay them to see its state at any version or time.",
    no_args_is_help=True,
)

JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print JSON for machines instead of the readable view."),
]
DEFAULT_TAIL = 20


def fails_cleanly(command: Callable[P, R]) -> Callable[P, R]:
    """One `error: …` line and exit 1 for a refusal or a lost database, never a traceback."""

    @exits_cleanly
    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        import psycopg

        from ktrdr.domain import DomainError

        try:
            return command(*args, **kwargs)
        except DomainError as exc:
            _fail(exc.detail)
        except UnresolvedId as exc:
            _fail(str(exc))
        except psycopg.OperationalError as exc:
            _fail(f"lost the database: {str(exc).strip().splitlines()[0]}")

    return wrapper


def _fail(message: str) -> NoReturn:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _on_log(action: Callable[[EventLog], Coroutine[Any, Any, R]]) -> R:
    """Run ``action`` on the event log of the database these commands read."""
    from ktrdr.bootstrap import debugging
    from ktrdr.bootstrap.system import bootstrap
    from ktrdr.config import load_settings

    settings = load_settings()
    url = debugging.debug_database(settings)

    async def run() -> R:
        async with bootstrap(settings, database_url=url, pool_size=2) as system:
            return await action(system.event_log)

    import asyncio

    return asyncio.run(run())


def _whole_id(op_id: str) -> str:
    """The whole id of the one operation whose id starts with ``op_id``, from the database."""
    if len(op_id) == 36:
        return op_id
    from psycopg import AsyncConnection

    from ktrdr.api.schemas import id_prefix_range
    from ktrdr.bootstrap import debugging
    from ktrdr.config import load_settings
    from ktrdr.projections import views

    async def matches() -> dict[str, Any]:
        url = debugging.debug_database(load_settings())
        async with await AsyncConnection.connect(url) as conn:
            items, total = await views.list_operations(
                conn, id_range=id_prefix_range(op_id), limit=MATCHES_SHOWN
            )
        return {"items": items, "total": total}

    import asyncio

    return the_one(op_id, asyncio.run(matches()))


# ---- tail -------------------------------------------------------------------------------


def _emit(event: RecordedEvent, as_json: bool) -> None:
    from ktrdr.cli import events_view as view
    from ktrdr.projections import timeline

    if as_json:
        typer.echo(json.dumps(timeline.event_json(event)))
    else:
        typer.echo(view.tail_line(event))


async def _follow(
    log: EventLog,
    matches: debugging.EventFilter,
    after: Position,
    *,
    as_json: bool,
    poll_interval: float,
    max_events: int | None,
) -> None:
    from ktrdr.bootstrap import debugging

    if max_events == 0:
        return
    seen = 0
    async for event in debugging.follow(log, matches, after, poll_interval=poll_interval):
        _emit(event, as_json)
        seen += 1
        if max_events is not None and seen >= max_events:
            return


def _tail(
    matches: debugging.EventFilter,
    *,
    limit: int,
    follow: bool,
    as_json: bool,
    poll_interval: float,
    timeout: float | None,
    max_events: int | None,
) -> Callable[[EventLog], Coroutine[Any, Any, None]]:
    import asyncio

    from ktrdr.bootstrap import debugging

    async def run(log: EventLog) -> None:
        events, after = await debugging.last_events(log, matches, limit)
        for event in events:
            _emit(event, as_json)
        if not follow:
            return
        following = _follow(
            log,
            matches,
            after,
            as_json=as_json,
            poll_interval=poll_interval,
            max_events=max_events,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(following, timeout)

    return run


@app.command()
@fails_cleanly
def tail(
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Keep printing new events as they are appended, until Ctrl-C."
        ),
    ] = False,
    event_types: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            "-t",
            metavar="TYPE",
            help="Only events of this type (e.g. OperationFailed); repeat for several.",
            show_default=False,
        ),
    ] = None,
    stream: Annotated[
        str | None,
        typer.Option(
            "--stream",
            "-s",
            help="Only these streams: an operation id, a stream type (`operation`,"
            " `worker-`), or a whole stream id (`worker-gpu-1`).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            "-n",
            min=0,
            help="How many of the latest matching events to print first (0: none, only new"
            " ones with --follow).",
        ),
    ] = DEFAULT_TAIL,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="One JSON object per event and line, for machines."),
    ] = False,
    poll_interval: Annotated[
        float,
        typer.Option(
            min=0.05,
            help="With --follow: seconds between two looks when no notification wakes us.",
        ),
    ] = 0.5,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="With --follow: stop after this many seconds. Default: until Ctrl-C.",
            show_default=False,
        ),
    ] = None,
    max_events: Annotated[
        int | None,
        typer.Option(min=0, hidden=True, help="With --follow: stop after this many new events."),
    ] = None,
) -> None:
    """The global event log, oldest first: time, position, stream, type and key fields."""
    from ktrdr.bootstrap import debugging

    matches = debugging.event_filter(event_types or (), stream)
    run = _tail(
        matches,
        limit=limit,
        follow=follow,
        as_json=as_json,
        poll_interval=poll_interval,
        timeout=timeout,
        max_events=max_events,
    )
    with contextlib.suppress(KeyboardInterrupt):
        _on_log(run)


# ---- stream -----------------------------------------------------------------------------


@app.command("stream")
@fails_cleanly
def stream_(operation_id: OperationIdArgument, as_json: JsonOption = False) -> None:
    """One operation's events as a timeline: time, version, type, attempt, worker, details."""
    from ktrdr.bootstrap import debugging
    from ktrdr.cli import events_view as view
    from ktrdr.projections import timeline

    operation_id = _whole_id(operation_id)
    events = _on_log(lambda log: debugging.operation_events(log, operation_id))
    if as_json:
        print_json([timeline.event_json(e) for e in events])
        return
    first, last = events[0].recorded_at, events[-1].recorded_at
    console = out()
    console.print(  # wrapped at a space, as the table below, to fit the terminal
        f"operation {operation_id}: {len(events)} events,"
        f" {timeline.stamp(first)} to {timeline.stamp(last)}",
        markup=False,
        highlight=False,
    )
    console.print(view.timeline_table(events))


# ---- replay -----------------------------------------------------------------------------


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO time such as 2025-06-01T12:30:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _pick(
    steps: list[timeline.Step], until: int | None, at: datetime | None
) -> list[timeline.Step]:
    from ktrdr.projections import timeline

    if until is not None:
        return [timeline.at_version(steps, until)]
    if at is not None:
        return [timeline.at_time(steps, at)]
    return steps


def _state(step: timeline.Step) -> dict[str, Any]:
    from ktrdr.projections import views

    return {**views.state_json(step.state), "version": step.event.stream_version}


@app.command()
@fails_cleanly
def replay(
    operation_id: OperationIdArgument,
    until: Annotated[
        int | None,
        typer.Option(
            "--until",
            metavar="VERSION",
            help="Only the state right after this event (1 = OperationCreated); see `stream`.",
            show_default=False,
        ),
    ] = None,
    at: Annotated[
        datetime | None,
        typer.Option(
            "--at",
            metavar="TIME",
            parser=_moment,
            help="Only the state as of this ISO time (UTC unless it says otherwise): after the"
            " last event recorded at or before it.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="The state as GET /api/v1/operations/{id} shows it, plus its `version`: one"
            " document with --until/--at, else one line per event.",
        ),
    ] = False,
) -> None:
    """Fold the operation's events with the domain's own rules; show the state after each."""
    from ktrdr.bootstrap import debugging
    from ktrdr.cli import events_view as view

    if until is not None and at is not None:
        raise typer.BadParameter("give --until or --at, not both")
    operation_id = _whole_id(operation_id)
    steps = _on_log(lambda log: debugging.operation_steps(log, operation_id))
    picked = _pick(steps, until, at)
    one_point = until is not None or at is not None
    if as_json and one_point:
        print_json(_state(picked[0]))
    elif as_json:
        for step in picked:
            typer.echo(json.dumps(_state(step)))
    elif one_point:
        for line in view.state_lines(picked[0], steps[-1].event.stream_version):
            say(line)
    else:
        out().print(view.steps_table(picked))


__all__ = ["app"]
