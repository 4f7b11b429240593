"""deliveries indexed by server and time (a server's health reads its last 24 hours)

Revision ID: 0007
Revises: 0006

The health of every listed server counts its deliveries of the last 24 hours. Through the
index on the server alone that read every delivery the server ever made: with 330,000 kept
(a year of a busy workspace is millions) the health of 1,100 servers took 170 ms on SQLite and
grew with the history. The index on (server, time) reads only the day; it replaces the
server-only one, which is its prefix.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.create_index("ix_deliveries_server_time", ["email_server_id", "created_at"])
        batch.drop_index("ix_deliveries_email_server_id")


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.create_index("ix_deliveries_email_server_id", ["email_server_id"])
        batch.drop_index("ix_deliveries_server_time")
