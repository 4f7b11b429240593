"""Refuse bodies over the limit before they are read whole (413, problem+json).

A declared Content-Length over the limit is refused before a byte of the body is read. A
chunked (or understated) body is counted as it arrives: the 413 goes out as soon as the count
passes the limit, with ``Connection: close``, so that the server stops reading the rest rather
than draining a body of any size to keep the connection alive.

Before the connection closes, what the client is still sending is read and dropped for a
moment (``LINGER_S``, as web servers' "lingering close" does): a socket closed with unread
data answers with a TCP reset, which can reach the client before it read the 413.
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import PayloadTooLarge
from .problems import problem_response

#: How long a refused upload is still read (and dropped) so that the 413 arrives intact.
LINGER_S = 1.0


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, messages_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Submitted messages (a batch of up to 500) are bigger than any settings document.
        self.messages_bytes = messages_bytes or max_bytes

    def _limit(self, scope: Scope) -> int:
        if scope.get("method") == "POST" and str(scope.get("path", "")).endswith("/messages"):
            return self.messages_bytes
        return self.max_bytes

    def _error(self, limit: int) -> Response:
        mib = limit / (1024 * 1024)
        response = problem_response(
            PayloadTooLarge(
                f"The request body is over the {mib:g} MiB limit; send a smaller certificate "
                "or fewer data (messages: fewer per batch)."
            )
        )
        # The rest of the body is never read: the connection cannot carry another request.
        response.headers["Connection"] = "close"
        return response

    async def _refuse(self, receive: Receive, send: Send, limit: int) -> None:
        """The whole 413 at once; the response ends only after the linger."""
        response = self._error(limit)
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body, "more_body": True})
        await _drain(receive, LINGER_S)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await self._refuse(receive, send, limit)
            return
        received = 0
        started = False
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started and not rejected:
                        # Answer now, from here: the framework reading the body turns any
                        # exception into its own 400, which would hide the 413.
                        rejected = True
                        await self._refuse(receive, send, limit)
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return  # the 413 went out already; drop the app's answer to the aborted read
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started and not rejected:
                await self._refuse(receive, send, limit)


async def _drain(receive: Receive, seconds: float) -> None:
    """Read and drop the request body until it ends, the client leaves, or ``seconds`` pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (remaining := deadline - loop.time()) > 0:
        try:
            message = await asyncio.wait_for(receive(), remaining)
        except TimeoutError:
            return
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
