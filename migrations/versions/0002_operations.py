"""Operation, checkpoint and worker read models; worker liveness.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE operations (
    operation_id uuid PRIMARY KEY,
    operation_type text NOT NULL,
    status text NOT NULL,
    params jsonb NOT NULL,
    parent_operation_id uuid,
    progress jsonb,
    attempt integer NOT NULL,
    worker_id text,
    created_at timestamptz NOT NULL,
    started_at timestamptz,
    completed_at timestamptz,
    error jsonb,
    result jsonb,
    checkpoint jsonb,
    resumable boolean NOT NULL,
    cancellation_requested boolean NOT NULL,
    stream_version integer NOT NULL,
    -- The folded aggregate: commands decide on it without replaying the stream.
    state jsonb NOT NULL
);
CREATE INDEX operations_status_idx ON operations (status, operation_type);
CREATE INDEX operations_created_idx ON operations (created_at DESC);
CREATE INDEX operations_running_worker_idx ON operations (worker_id) WHERE status = 'running';
CREATE INDEX operations_parent_idx ON operations (parent_operation_id)
    WHERE parent_operation_id IS NOT NULL;

CREATE TABLE checkpoint_history (
    operation_id uuid NOT NULL,
    sequence integer NOT NULL,
    operation_type text NOT NULL,
    checkpoint_type text NOT NULL,
    state jsonb NOT NULL,
    artifacts_path text,
    artifacts jsonb NOT NULL,
    state_size_bytes bigint NOT NULL,
    artifacts_size_bytes bigint NOT NULL,
    attempt integer NOT NULL,
    worker_id text,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (operation_id, sequence)
);
CREATE INDEX checkpoint_history_created_idx ON checkpoint_history (created_at);

-- The latest live checkpoint per operation (the reference's CheckpointRecord shape).
CREATE TABLE checkpoints (
    operation_id uuid PRIMARY KEY,
    sequence integer NOT NULL,
    operation_type text NOT NULL,
    checkpoint_type text NOT NULL,
    state jsonb NOT NULL,
    artifacts_path text,
    artifacts jsonb NOT NULL,
    state_size_bytes bigint NOT NULL,
    artifacts_size_bytes bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX checkpoints_created_idx ON checkpoints (created_at DESC);

CREATE TABLE workers (
    worker_id text PRIMARY KEY,
    worker_type text NOT NULL,
    status text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    capabilities jsonb NOT NULL,
    version text NOT NULL,
    registered_at timestamptz NOT NULL,
    missed_at timestamptz,
    deregistered_at timestamptz,
    stream_version integer NOT NULL,
    state jsonb NOT NULL
);

-- Heartbeats are not events: they only move this row. A missed one is an event.
CREATE TABLE worker_liveness (
    worker_id text PRIMARY KEY,
    last_heartbeat_at timestamptz NOT NULL,
    operation_id uuid,
    attempt integer
);
"""

DOWNGRADE = """
DROP TABLE worker_liveness;
DROP TABLE workers;
DROP TABLE checkpoints;
DROP TABLE checkpoint_history;
DROP TABLE operations;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
