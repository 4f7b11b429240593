"""spent test receipts

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spent_receipts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("spent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_spent_receipts_spent_at", "spent_receipts", ["spent_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_spent_receipts_spent_at", table_name="spent_receipts")
    op.drop_table("spent_receipts")
