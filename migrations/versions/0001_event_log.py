"""The append-only event log, projection positions and the first projections.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id text NOT NULL,
    stream_version integer NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    schema_version integer NOT NULL,
    data jsonb NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_check CHECK (stream_version >= 1),
    CONSTRAINT events_schema_version_check CHECK (schema_version >= 1)
);

-- Readers page by this pair (docs/design.md §3): identity values commit out of order.
CREATE INDEX events_transaction_position_idx ON events (transaction_id, global_position);

-- Written only by append: history is never rewritten in place (upcast on read instead).
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events table is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- No NOTIFY trigger: the append path notifies after commit (see eventlog/queries.py).

CREATE TABLE projection_positions (
    name text PRIMARY KEY,
    transaction_id xid8 NOT NULL DEFAULT '0'::xid8,
    global_position bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE stream_type_counts (
    stream_type text PRIMARY KEY,
    event_count bigint NOT NULL
);

CREATE TABLE event_type_counts (
    event_type text PRIMARY KEY,
    event_count bigint NOT NULL
);
"""

DOWNGRADE = """
DROP TABLE event_type_counts;
DROP TABLE stream_type_counts;
DROP TABLE projection_positions;
DROP TABLE events;
DROP FUNCTION events_refuse_change();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
