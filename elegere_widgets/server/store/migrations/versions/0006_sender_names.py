"""a sender's name is unique in its workspace, whatever its case (custom actions, jobs)

Revision ID: 0006
Revises: 0004

Names that already repeat in a workspace (written before the store refused them) get a
number, "Send quote (2)", so that the constraint can be added; the first one keeps its name.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None

MAX_NAME = 200
TABLES = {"custom_actions": "uq_custom_action_name", "scheduler_jobs": "uq_scheduler_job_name"}


def _numbered(name: str, n: int) -> str:
    suffix = f" ({n})"
    return name[: MAX_NAME - len(suffix)] + suffix


def _fill_keys(table: str) -> None:
    """Every row's name_key (as ``tables.sender_name_key`` makes it), renaming repeats."""
    conn = op.get_bind()
    t = sa.table(
        table, sa.column("id"), sa.column("workspace_id"), sa.column("name"), sa.column("name_key")
    )
    rows = conn.execute(sa.select(t.c.id, t.c.workspace_id, t.c.name).order_by(t.c.id)).all()
    taken = {(ws, name.casefold()) for _, ws, name in rows}
    seen: set[tuple[str, str]] = set()
    for ident, ws, name in rows:
        key = (ws, name.casefold())
        if key in seen:
            n = 2
            while (ws, _numbered(name, n).casefold()) in taken:
                n += 1
            name = _numbered(name, n)
            key = (ws, name.casefold())
            taken.add(key)
        seen.add(key)
        conn.execute(t.update().where(t.c.id == ident).values(name=name, name_key=key[1]))


def upgrade() -> None:
    for table, constraint in TABLES.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("name_key", sa.String(MAX_NAME), nullable=True))
        _fill_keys(table)
        with op.batch_alter_table(table) as batch:
            batch.alter_column("name_key", existing_type=sa.String(MAX_NAME), nullable=False)
            batch.create_unique_constraint(constraint, ["workspace_id", "name_key"])


def downgrade() -> None:
    for table, constraint in TABLES.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(constraint, type_="unique")
            batch.drop_column("name_key")
