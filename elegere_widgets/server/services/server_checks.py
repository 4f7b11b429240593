"""A stored server's connection tests, kept: each is a ``server_checks`` row, and the latest
(manual or scheduled) is the server's ``last_test``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, literal, select, tuple_, update
from sqlalchemy.orm import Session

from ...models import ConnectionTestResult, Page, ServerCheck
from ..security import new_id
from ..store.tables import EmailServerRow, ServerCheckRow, UTCDateTime
from .paging import decode_cursor, encode_cursor

__all__ = ["checks_page", "record_check", "summarize_checks", "test_summary"]


def test_summary(result: ConnectionTestResult) -> str:
    """What a test's record says: passed, or the stage that failed and why (no secret: the
    stages carry the server's replies, never what was sent)."""
    failed = result.failed_stage
    if result.ok:
        return "passed"
    return f"failed at {failed.name}: {failed.detail}" if failed else "failed"


def last_test_record(
    ok: bool, elapsed_ms: int, detail: str, at: datetime, source: str | None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ok": ok,
        "at": at.isoformat(),
        "elapsed_ms": elapsed_ms,
        "detail": detail,
    }
    if source is not None:
        record["source"] = source
    return record


def record_check(
    session: Session,
    server_id: str,
    result: ConnectionTestResult,
    source: str,
    at: datetime | None = None,
) -> ServerCheckRow:
    """Keep the check and make it the server's last test; the caller commits."""
    at = at or datetime.now(UTC)
    failed = result.failed_stage
    row = ServerCheckRow(
        id=new_id("chk"),
        email_server_id=server_id,
        checked_at=at,
        ok=result.ok,
        failed_stage=None if result.ok or failed is None else failed.name,
        elapsed_ms=result.elapsed_ms,
        detail=test_summary(result),
        source=source,
    )
    session.add(row)
    session.execute(
        update(EmailServerRow)
        .where(EmailServerRow.id == server_id)
        .values(
            last_test=last_test_record(row.ok, row.elapsed_ms, row.detail, at, source),
            last_checked_at=at,
            last_check_detail=row.detail,
            failed_checks=0 if row.ok else EmailServerRow.failed_checks + 1,
            failing_since=None
            if row.ok
            else func.coalesce(EmailServerRow.failing_since, literal(at, UTCDateTime())),
        )
        .execution_options(synchronize_session=False)
    )
    return row


def summarize_checks(connection: Connection) -> None:
    """Sum every server's kept checks up on its row again, as ``record_check`` does one by
    one: for checks stored in bulk (an import, a benchmark's month of history)."""
    check = ServerCheckRow.__table__.alias("c")
    passed = ServerCheckRow.__table__.alias("p")
    own = check.c.email_server_id == EmailServerRow.id
    run = and_(
        own,
        ~check.c.ok,
        ~exists().where(
            passed.c.email_server_id == check.c.email_server_id,
            passed.c.ok,
            passed.c.checked_at >= check.c.checked_at,
        ),
    )
    connection.execute(
        update(EmailServerRow).values(
            last_checked_at=select(func.max(check.c.checked_at)).where(own).scalar_subquery(),
            last_check_detail=select(check.c.detail)
            .where(own)
            .order_by(check.c.checked_at.desc(), check.c.id.desc())
            .limit(1)
            .scalar_subquery(),
            failed_checks=select(func.count()).select_from(check).where(run).scalar_subquery(),
            failing_since=select(func.min(check.c.checked_at)).where(run).scalar_subquery(),
        )
    )


def checks_page(
    session: Session, server_id: str, *, cursor: str | None, limit: int
) -> Page[ServerCheck]:
    """The server's checks, newest first, by keyset cursor ``(checked_at, id)``."""
    query = select(ServerCheckRow).where(ServerCheckRow.email_server_id == server_id)
    if cursor:
        query = query.where(
            tuple_(ServerCheckRow.checked_at, ServerCheckRow.id) < decode_cursor(cursor)
        )
    rows = list(
        session.scalars(
            query.order_by(ServerCheckRow.checked_at.desc(), ServerCheckRow.id.desc()).limit(
                limit + 1
            )
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[ServerCheck](
        items=[
            ServerCheck.model_validate(
                {
                    "id": r.id,
                    "email_server_id": r.email_server_id,
                    "checked_at": r.checked_at,
                    "ok": r.ok,
                    "failed_stage": r.failed_stage,
                    "elapsed_ms": r.elapsed_ms,
                    "detail": r.detail,
                    "source": r.source,
                }
            )
            for r in rows
        ],
        next_cursor=encode_cursor(rows[-1].checked_at, rows[-1].id) if more else None,
    )
