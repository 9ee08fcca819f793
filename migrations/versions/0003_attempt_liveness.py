"""Liveness per (operation, attempt): the lease a running attempt's worker keeps alive;
the operation read model shows a checkpoint its worker could not save.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = """
-- Not a read model: heartbeats are not events. A row says when the worker holding an
-- attempt last said so; the orphan detector judges each running attempt by it.
CREATE TABLE attempt_liveness (
    operation_id uuid NOT NULL,
    attempt integer NOT NULL,
    worker_id text NOT NULL,
    last_seen_at timestamptz NOT NULL,
    PRIMARY KEY (operation_id, attempt)
);

ALTER TABLE operations ADD COLUMN checkpoint_failure jsonb;
"""

DOWNGRADE = """
ALTER TABLE operations DROP COLUMN checkpoint_failure;
DROP TABLE attempt_liveness;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
