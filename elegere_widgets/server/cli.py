"""`elegere`: serve, worker, migrate, seed --demo, rotate-key, token create / list / revoke."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .config import Settings

if TYPE_CHECKING:
    from .context import ServiceContext


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "database", None):
        overrides["database_url"] = args.database
    if getattr(args, "egress_allow", None):
        overrides["egress_allow"] = args.egress_allow
    if getattr(args, "egress_deny", None):
        overrides["egress_deny"] = args.egress_deny
    if getattr(args, "egress_allow_port", None):
        overrides["egress_allow_ports"] = args.egress_allow_port
    return Settings(**overrides)  # type: ignore[arg-type]


def _context(args: argparse.Namespace) -> ServiceContext:
    from .context import ServiceContext
    from .store.db import migrate

    ctx = ServiceContext.build(_settings(args))
    migrate(ctx.engine)
    return ctx


def _engine(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The store at the newest schema, for commands that need no secret key."""
    from .store.db import make_engine, migrate

    engine = make_engine(_settings(args).resolved_database_url())
    migrate(engine)
    return engine


def cmd_migrate(args: argparse.Namespace) -> int:
    _context(args)
    print("The store is at the newest schema.", file=sys.stderr)
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from .seed import seed_demo

    if not args.demo:
        print("Nothing to seed: pass --demo for the demo data.", file=sys.stderr)
        return 2
    added = seed_demo(_context(args))
    print(
        "Demo data added." if added else "The store has data already; left it as it is.",
        file=sys.stderr,
    )
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from .tokens import create, create_sender, parse_duration

    if args.sender != bool(args.workspace):
        print(
            "A sender token needs both --sender and --workspace NAME (its name or id), e.g. "
            "`elegere token create --sender --workspace Sales`.",
            file=sys.stderr,
        )
        return 2
    if not args.sender and not args.user:
        print("Pass --user EMAIL (or --sender --workspace NAME).", file=sys.stderr)
        return 2
    try:
        expires_in = parse_duration(args.expires_in) if args.expires_in else None
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    engine = _engine(args)
    try:
        with Session(engine) as session:
            if args.sender:
                token = create_sender(session, args.workspace, args.user, expires_in=expires_in)
            else:
                token = create(session, args.user, expires_in=expires_in)
    except LookupError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(token)
    return 0


def _when(value: object) -> str:
    from datetime import UTC, datetime

    if not isinstance(value, datetime):
        return "never"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def cmd_token_list(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from .tokens import list_tokens

    engine = _engine(args)
    try:
        with Session(engine) as session:
            tokens = list_tokens(session)
    finally:
        engine.dispose()
    rows = [("ID", "USER", "KIND", "CREATED", "EXPIRES")] + [
        (t.id, t.user_email, t.kind, _when(t.created_at), _when(t.expires_at)) for t in tokens
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from .tokens import revoke

    engine = _engine(args)
    try:
        with Session(engine) as session:
            found = revoke(session, args.id)
    finally:
        engine.dispose()
    if not found:
        print(
            f"There is no token '{args.id}'; `elegere token list` shows the ids.", file=sys.stderr
        )
        return 1
    print(f"Revoked {args.id}: it no longer works.", file=sys.stderr)
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    from .rotate import rotate_key

    settings = _settings(args)
    if settings.secret_key and not args.new_key:
        print(
            "The key comes from ELEGERE_SECRET_KEY: pass the new one with --new-key (make one "
            "with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'), then set ELEGERE_SECRET_KEY to it.",
            file=sys.stderr,
        )
        return 2
    _engine(args).dispose()  # the store must be at the newest schema
    done = rotate_key(settings, args.new_key.encode() if args.new_key else None)
    where = (
        "ELEGERE_SECRET_KEY must now be the new key, in every process (restart them with it)"
        if settings.secret_key
        else (
            f"the new key is in {settings.data_dir / 'secret.key'}; running services use it "
            "without a restart"
        )
    )
    print(f"Re-encrypted the secrets of {done.rotated} server(s); {where}.", file=sys.stderr)
    if done.unreadable:
        print(
            f"{len(done.unreadable)} server(s) hold secrets no key opens "
            f"({', '.join(done.unreadable)}): left as they are; enter their secrets again.",
            file=sys.stderr,
        )
    return 0


def _on_start(ctx) -> None:  # type: ignore[no-untyped-def]
    """What serve does once before it answers: purge expired tokens, say what cannot open."""
    from sqlalchemy import select

    from .store.tables import EmailServerRow
    from .tokens import purge_expired

    with ctx.sessions() as session:
        purged = purge_expired(session)
        session.commit()
        sealed = session.execute(
            select(EmailServerRow.secrets_sealed).where(EmailServerRow.secrets_sealed.is_not(None))
        ).scalars()
        unreadable = sum(1 for s in sealed if not ctx.box.opens(s))
    log = logging.getLogger("elegere.serve")
    if purged:
        log.info("Purged %d expired token(s).", purged)
    if unreadable:
        log.warning(
            "%d server(s) hold secrets that the configured key (%s) cannot open; they are "
            "marked in the list: restore the key they were saved with, or enter them again.",
            unreadable,
            ctx.box.source.describe() if ctx.box.source else "ELEGERE_SECRET_KEY",
        )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app
    from .rate_limit import per_process_warning
    from .seed import DEMO_PASSWORD, DEMO_USERS, create_token, seed_demo

    settings = _settings(args)
    app = create_app(settings)
    _on_start(app.state.ctx)
    if warning := per_process_warning(settings):
        logging.getLogger("elegere_widgets.server").warning(warning)
    url = f"http://{args.host}:{args.port}"
    if args.demo:
        ctx = app.state.ctx
        seed_demo(ctx)
        print(f"eLegere email servers service: {url}  (API docs: {url}/api/v1/docs)")
        print(f"Demo users sign in with the password '{DEMO_PASSWORD}'. Demo API tokens:")
        for email in DEMO_USERS:
            print(f"  {email:24} {create_token(ctx, email)}")
        sys.stdout.flush()
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


# ---------------------------------------------------------------- elegere worker


def cmd_worker(args: argparse.Namespace) -> int:
    from .context import ServiceContext
    from .worker.runner import NotMigrated, Worker

    logging.getLogger("huey").setLevel(logging.WARNING)  # a line per task says nothing
    ctx = ServiceContext.build(_settings(args))
    try:
        worker = Worker(ctx, threads=args.threads)
    except (NotMigrated, ValueError) as exc:
        print(f"elegere worker: {exc}", file=sys.stderr)
        return 2
    worker.run()
    return 0


def add_worker_command(sub: Any, with_db: Callable[[argparse.ArgumentParser], Any]) -> None:
    worker = with_db(
        sub.add_parser("worker", help="deliver queued messages (stop with Ctrl-C or SIGTERM)")
    )
    worker.add_argument(
        "--threads", type=int, default=4, help="messages sent at a time (default: 4)"
    )
    worker.add_argument(
        "--egress-allow",
        metavar="CIDR",
        nargs="+",
        action="extend",
        help="networks mail may be sent to although guarded (e.g. 127.0.0.0/8)",
    )
    worker.add_argument(
        "--egress-allow-port",
        metavar="PORT",
        nargs="+",
        action="extend",
        help="ports besides 25, 465, 587 and 2525 that mail may be sent to",
    )
    worker.set_defaults(func=cmd_worker)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elegere", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--database",
            metavar="URL",
            help="SQLAlchemy URL (default: ELEGERE_DATABASE_URL or .elegere/elegere.db)",
        )
        return p

    serve = with_db(sub.add_parser("serve", help="run the service"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument(
        "--egress-allow",
        metavar="CIDR",
        nargs="+",
        action="extend",
        help="networks connection tests may reach although guarded (e.g. 127.0.0.0/8)",
    )
    serve.add_argument(
        "--egress-deny",
        metavar="CIDR",
        nargs="+",
        action="extend",
        help="networks connection tests may not reach although ordinary (e.g. 10.0.0.0/8)",
    )
    serve.add_argument(
        "--egress-allow-port",
        metavar="PORT",
        nargs="+",
        action="extend",
        help="ports besides 25, 465, 587 and 2525 that connection tests may reach (e.g. 2526 or 10000-10100)",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="seed the demo data when the store is empty and print demo tokens",
    )
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)

    with_db(sub.add_parser("migrate", help="bring the store to the newest schema")).set_defaults(
        func=cmd_migrate
    )
    seed = with_db(sub.add_parser("seed", help="add demo data to an empty store"))
    seed.add_argument("--demo", action="store_true")
    seed.set_defaults(func=cmd_seed)

    rotate = with_db(sub.add_parser("rotate-key", help="re-encrypt every secret under a new key"))
    rotate.add_argument("--new-key", metavar="KEY", help="the new Fernet key (default: made)")
    rotate.set_defaults(func=cmd_rotate_key)

    add_worker_command(sub, with_db)

    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    create = with_db(token.add_parser("create", help="print a new API token for a user"))
    create.add_argument("--user", metavar="EMAIL", help="whose token (a sender token: owner)")
    create.add_argument(
        "--sender", action="store_true", help="a token that may only send a workspace's mail"
    )
    create.add_argument("--workspace", metavar="NAME", help="the sender token's workspace")
    create.add_argument(
        "--expires-in",
        metavar="DURATION",
        help="the token stops working after this long: 30d, 12h, 90m, 2w (default: never)",
    )
    create.set_defaults(func=cmd_token_create)
    listing = with_db(token.add_parser("list", help="the tokens in use (never their values)"))
    listing.set_defaults(func=cmd_token_list)
    revoke = with_db(token.add_parser("revoke", help="make a token stop working at once"))
    revoke.add_argument("id", metavar="ID", help="the token's id, as `elegere token list` shows")
    revoke.set_defaults(func=cmd_token_revoke)

    from .send_cli import add_send_command

    add_send_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines say nothing to users
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except Exception as exc:  # a clear line for a person, not a traceback
        from pydantic import ValidationError

        from .secrets import SecretKeyError

        if isinstance(exc, SecretKeyError | ValidationError):
            print(f"elegere: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    raise SystemExit(main())
