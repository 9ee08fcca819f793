"""API tokens: the read model of the ``token-<id>`` streams, the worker ids each token
may act as, and when each token was last used.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE api_tokens (
    token_id text PRIMARY KEY,
    name text NOT NULL,
    role text NOT NULL,
    secret_sha256 text NOT NULL UNIQUE,
    worker_id text,
    issued_at timestamptz NOT NULL,
    revoked_at timestamptz,
    stream_version integer NOT NULL
);
-- One token per worker id: the first binding wins, and the primary key says so.
CREATE TABLE worker_tokens (
    worker_id text PRIMARY KEY,
    token_id text NOT NULL
);
-- Not a read model: coalesced (at most one write a minute per token), never an event.
CREATE TABLE api_token_usage (
    token_id text PRIMARY KEY,
    last_used_at timestamptz NOT NULL
);
"""

DOWNGRADE = """
DROP TABLE api_token_usage;
DROP TABLE worker_tokens;
DROP TABLE api_tokens;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
