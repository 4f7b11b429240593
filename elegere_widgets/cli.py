"""The ``elegere`` command: the service's CLI, or one line saying which extra it needs."""

from __future__ import annotations

import sys
from collections.abc import Sequence

# The top-level packages the service's CLI needs that the base install does not bring.
_SERVER_PACKAGES = frozenset(
    {
        "fastapi",
        "starlette",
        "uvicorn",
        "sqlalchemy",
        "alembic",
        "pydantic_settings",
        "cryptography",
        "msal",
        "requests",
        "asn1crypto",
        "jwt",
        "limits",
        "multipart",
    }
)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from .server.cli import main as server_main
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _SERVER_PACKAGES:
            raise
        print(
            f"elegere: the service needs the [server] extra ({exc.name} is not installed): "
            "pip install 'elegere-widgets[server]'",
            file=sys.stderr,
        )
        return 1
    return server_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
