"""Arguments checked before any I/O: ids as path segments, text, the base URL.

A bad argument is a bug in the calling code, so these raise ValueError/TypeError, not an
ElegereError, and they raise before a request leaves.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import httpx

API_PREFIX = "/api/v1"


# ---------------------------------------------------------------- ids in paths


def segment(value: object, what: str) -> str:
    """One path segment for an id, refused before any I/O when it cannot be one.

    ``.`` and ``..`` are refused too: httpx normalises dot segments away, so such an "id"
    would silently address another endpoint.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}.")
    if not value.strip():
        raise ValueError(f"{what} must not be empty.")
    if value in (".", ".."):
        raise ValueError(f"{what} {value!r} is not a valid id.")
    return quote(value, safe="")


def require_text(value: object, what: str) -> str:
    """A non-empty string argument that is not a path segment (an address, a cursor...)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}.")
    if not value.strip():
        raise ValueError(f"{what} must not be empty.")
    return value


def positive_page_size(page_size: object) -> int:
    """A page size: a positive int (a bool is not one)."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise ValueError(f"page_size must be a positive int, not {page_size!r}.")
    return page_size


def aware_iso(value: object, what: str) -> str:
    """A time for a query, with its zone: a naive one is refused."""
    # A naive datetime is ambiguous (whose local time?), and the service compares instants.
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, not {type(value).__name__}.")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{what} has no time zone; pass an aware datetime such as "
            "datetime(2024, 5, 1, tzinfo=timezone.utc)."
        )
    return value.isoformat()


# ---------------------------------------------------------------- base URL


def normalize_base_url(base_url: object) -> str:
    """The service root without a trailing slash; ``/api/v1`` at the end is tolerated."""
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a string, not {type(base_url).__name__}.")
    root = base_url.strip().rstrip("/")
    root = root.removesuffix(API_PREFIX).rstrip("/")
    try:
        url = httpx.URL(root)
    except httpx.InvalidURL as exc:
        raise ValueError(f"base_url {base_url!r} is not a valid URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"base_url must be the service's address such as http://127.0.0.1:8765, "
            f"not {base_url!r}."
        )
    return root


def display_url(root: str) -> str:
    """The root as it may be shown in messages and reprs: any ``user:password@`` removed."""
    url = httpx.URL(root)
    return str(url.copy_with(userinfo=b"")) if url.userinfo else root
