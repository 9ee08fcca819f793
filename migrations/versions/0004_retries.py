"""Retry policies and timeouts on the operation read model; the retry processor's queries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE operations
    ADD COLUMN retry_policy jsonb,
    ADD COLUMN attempts_used integer NOT NULL DEFAULT 0,
    ADD COLUMN next_retry_at timestamptz,
    ADD COLUMN timeout_seconds double precision,
    ADD COLUMN deadline_at timestamptz;

-- The retry processor looks for due retries and passed deadlines a few times a second.
CREATE INDEX operations_next_retry_idx ON operations (next_retry_at)
    WHERE next_retry_at IS NOT NULL;
CREATE INDEX operations_deadline_idx ON operations (deadline_at)
    WHERE deadline_at IS NOT NULL AND status NOT IN ('completed', 'failed', 'cancelled');
"""

DOWNGRADE = """
DROP INDEX operations_deadline_idx;
DROP INDEX operations_next_retry_idx;
ALTER TABLE operations
    DROP COLUMN deadline_at,
    DROP COLUMN timeout_seconds,
    DROP COLUMN next_retry_at,
    DROP COLUMN attempts_used,
    DROP COLUMN retry_policy;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
