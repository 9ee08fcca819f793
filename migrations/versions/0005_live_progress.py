"""The live progress of each operation: one small row a progress report updates, while
ProgressReported events are coalesced to one every few seconds.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = """
-- Not a read model: the freshest report of the current attempt, between the events.
CREATE TABLE operation_progress (
    operation_id uuid PRIMARY KEY,
    attempt integer NOT NULL,
    percentage double precision NOT NULL,
    current_step text NOT NULL,
    message text NOT NULL,
    details jsonb NOT NULL,
    at timestamptz NOT NULL
);
"""

DOWNGRADE = """
DROP TABLE operation_progress;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
