"""server checks (scheduled and manual) and the health schedule's leases

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "server_checks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("email_server_id", sa.String(40), nullable=False),
        sa.Column("checked_at", TZ, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("failed_stage", sa.String(30), nullable=True),
        sa.Column("elapsed_ms", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
    )
    op.create_index(
        "ix_server_checks_server_time", "server_checks", ["email_server_id", "checked_at", "id"]
    )
    op.create_table(
        "server_check_leases",
        sa.Column("email_server_id", sa.String(40), primary_key=True),
        sa.Column("next_check_at", TZ, nullable=False),
        sa.Column("check_lease_owner", sa.String(80), nullable=True),
        sa.Column("check_lease_expires_at", TZ, nullable=True),
        sa.Column("alerted_status", sa.String(20), nullable=True),
        sa.Column("alerted_at", TZ, nullable=True),
        sa.Column("reminded_days", sa.Integer(), nullable=True),
    )
    op.create_index("ix_server_check_leases_due", "server_check_leases", ["next_check_at"])


def downgrade() -> None:
    op.drop_table("server_check_leases")
    op.drop_table("server_checks")
