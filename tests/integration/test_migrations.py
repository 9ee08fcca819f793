"""A fresh `upgrade head` gives the schema the code expects; `downgrade base` removes it."""

from __future__ import annotations

import psycopg
import pytest

from ktrdr.bootstrap import database

EVENTS_COLUMNS = {
    "global_position": ("bigint", "NO"),
    "stream_id": ("text", "NO"),
    "stream_version": ("integer", "NO"),
    "event_id": ("uuid", "NO"),
    "event_type": ("text", "NO"),
    "schema_version": ("integer", "NO"),
    "data": ("jsonb", "NO"),
    "metadata": ("jsonb", "NO"),
    "transaction_id": ("xid8", "NO"),
    "recorded_at": ("timestamp with time zone", "NO"),
}


def columns(conn: psycopg.Connection, table: str) -> dict[str, tuple[str, str]]:
    rows = conn.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = %s",
        (table,),
    ).fetchall()
    return {name: (kind, nullable) for name, kind, nullable in rows}


def tables(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchall()
    return {r[0] for r in rows}


def test_upgrade_head_gives_the_expected_schema(empty_database_url: str) -> None:
    database.migrate(empty_database_url)
    assert database.current_revision(empty_database_url) == database.head_revision()
    with psycopg.connect(empty_database_url) as conn:
        assert columns(conn, "events") == EVENTS_COLUMNS
        identity = conn.execute(
            "SELECT is_identity, identity_generation FROM information_schema.columns"
            " WHERE table_name = 'events' AND column_name = 'global_position'"
        ).fetchone()
        assert identity == ("YES", "ALWAYS")
        default = conn.execute(
            "SELECT column_default FROM information_schema.columns"
            " WHERE table_name = 'events' AND column_name = 'transaction_id'"
        ).fetchone()
        assert default == ("pg_current_xact_id()",)
        constraints = {
            name: kind
            for name, kind in conn.execute(
                "SELECT conname, contype FROM pg_constraint WHERE conrelid = 'events'::regclass"
            ).fetchall()
        }
        assert constraints["events_stream_version_key"] == "u"
        assert constraints["events_event_id_key"] == "u"
        assert constraints["events_pkey"] == "p"
        index = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'events_transaction_position_idx'"
        ).fetchone()
        assert index is not None and "(transaction_id, global_position)" in index[0]
        triggers = {
            r[0]
            for r in conn.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'events'::regclass"
                " AND NOT tgisinternal"
            ).fetchall()
        }
        assert triggers == {"events_append_only", "events_no_truncate"}
        assert set(columns(conn, "projection_positions")) == {
            "name",
            "transaction_id",
            "global_position",
            "updated_at",
        }
        assert {"stream_type_counts", "event_type_counts"} <= tables(conn)
        assert columns(conn, "attempt_liveness") == {
            "operation_id": ("uuid", "NO"),
            "attempt": ("integer", "NO"),
            "worker_id": ("text", "NO"),
            "last_seen_at": ("timestamp with time zone", "NO"),
        }


def test_events_are_append_only(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO events (stream_id, stream_version, event_id, event_type,"
            " schema_version, data) VALUES ('operation-x', 1, gen_random_uuid(), 'A', 1, '{}')"
        )
        for statement in ("UPDATE events SET data = '{}'", "DELETE FROM events", "TRUNCATE events"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)


def test_downgrade_base_then_upgrade_again(empty_database_url: str) -> None:
    database.migrate(empty_database_url)
    database.downgrade(empty_database_url, "base")
    with psycopg.connect(empty_database_url) as conn:
        assert tables(conn) <= {"alembic_version"}
        functions = conn.execute(
            "SELECT proname FROM pg_proc WHERE proname LIKE 'events_%'"
        ).fetchall()
        assert functions == []
    database.migrate(empty_database_url)
    assert database.current_revision(empty_database_url) == database.head_revision()
