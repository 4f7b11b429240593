"""deliveries that went wrong, indexed apart (health looks at the servers that have any)

Revision ID: 0009
Revises: 0008

The health of every listed server counted its whole day of deliveries: 11,000 rows for 1,100
servers sending ten a day, 15–30 ms of every list call on SQLite. Only a server with a failed
or deferred delivery in the day can be degraded or failing by its deliveries, so the listing
first finds those servers in this partial index (a handful of rows) and counts the day of
those alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# As GONE_WRONG in store/tables.py when this revision was written.
_GONE_WRONG = "status IN ('failed', 'deferred') AND history = false"


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_gone_wrong",
        "deliveries",
        ["email_server_id", "created_at"],
        sqlite_where=sa.text(_GONE_WRONG),
        postgresql_where=sa.text(_GONE_WRONG),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_gone_wrong", table_name="deliveries")
