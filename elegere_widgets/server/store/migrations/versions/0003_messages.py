"""messages, senders' servers, fallbacks and real deliveries

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("organizations") as t:
        t.add_column(sa.Column("default_server_id", sa.String(40), nullable=True))
    with op.batch_alter_table("workspaces") as t:
        t.add_column(sa.Column("notifications_server_id", sa.String(40), nullable=True))
    with op.batch_alter_table("api_tokens") as t:
        t.add_column(sa.Column("workspace_id", sa.String(40), nullable=True))
    with op.batch_alter_table("email_servers") as t:
        t.add_column(sa.Column("fallback_server_id", sa.String(40), nullable=True))
        t.add_column(sa.Column("max_per_minute", sa.Integer(), nullable=True))
    with op.batch_alter_table("deliveries") as t:
        t.add_column(sa.Column("message_id", sa.String(40), nullable=True))
        t.add_column(sa.Column("stage", sa.String(30), nullable=True))
        t.add_column(sa.Column("reply_code", sa.Integer(), nullable=True))
        t.add_column(sa.Column("history", sa.Boolean(), nullable=False, server_default=sa.false()))
        t.create_index("ix_deliveries_message_id", ["message_id"])

    op.create_table(
        "messages",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("organization_id", sa.String(40), nullable=False),
        sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("sender_kind", sa.String(20), nullable=False),
        sa.Column("sender_ref", sa.String(40), nullable=False),
        sa.Column("email_server_id", sa.String(40), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("body_digest", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("to", sa.JSON(), nullable=False),
        sa.Column("cc", sa.JSON(), nullable=False),
        sa.Column("bcc", sa.JSON(), nullable=False),
        sa.Column("reply_to", sa.String(320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("body_purged_at", TZ, nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("server_failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=True),
        sa.Column("lease_owner", sa.String(80), nullable=True),
        sa.Column("lease_expires_at", TZ, nullable=True),
        sa.Column("last_reply", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.UniqueConstraint("workspace_id", "idempotency_key", name="uq_message_idempotency"),
        sa.UniqueConstraint("message_id", name="uq_messages_message_id"),
    )
    op.create_index("ix_messages_due", "messages", ["status", "next_attempt_at"])
    op.create_index("ix_messages_ws_time", "messages", ["workspace_id", "created_at", "id"])
    op.create_index("ix_messages_email_server_id", "messages", ["email_server_id"])


def downgrade() -> None:
    op.drop_table("messages")
    with op.batch_alter_table("deliveries") as t:
        t.drop_index("ix_deliveries_message_id")
        for column in ("history", "reply_code", "stage", "message_id"):
            t.drop_column(column)
    with op.batch_alter_table("email_servers") as t:
        t.drop_column("max_per_minute")
        t.drop_column("fallback_server_id")
    with op.batch_alter_table("api_tokens") as t:
        t.drop_column("workspace_id")
    with op.batch_alter_table("workspaces") as t:
        t.drop_column("notifications_server_id")
    with op.batch_alter_table("organizations") as t:
        t.drop_column("default_server_id")
