"""Wait for the page's visitor in a kernel that Voilà preheated.

A preheated kernel runs the notebook before anyone asks for the page, so that the page shows
at once; the cells after :func:`wait_for_visitor` then run when the page is opened, and read
the servers as they are then, not as they were minutes earlier.

This is what ``voila.utils.wait_for_request`` does, without importing ``voila``: that import
pulls in the Jupyter server and takes about 4 s here, which a visitor who opens the page early
(right after ``make run`` prints the address) would wait for. The protocol is Voilà 0.5's (the
project pins ``voila<0.6``): a websocket at ``voila/query/<kernel id>`` sends one JSON object,
the request's CGI-style variables, when the page is requested.
tests/dashboard/test_preheat.py drives this and Voilà's own function the same way and
compares them, so an upgrade of Voilà that changes the protocol fails there.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading

CONNECT_TIMEOUT_S = 5.0


def query_url(environ: dict[str, str] | None = None) -> str | None:
    """Where Voilà answers this kernel's visitor, or None outside a preheated kernel."""
    env = dict(os.environ) if environ is None else environ
    kernel_id = env.get("VOILA_KERNEL_ID", "")
    if env.get("VOILA_PREHEAT") != "True" or not kernel_id:
        return None
    protocol = env.get("VOILA_WS_PROTOCOL", "ws")
    ip = env.get("VOILA_APP_IP", "127.0.0.1")
    port = env.get("VOILA_APP_PORT", "8866")
    base = env.get("VOILA_WS_BASE_URL", env.get("VOILA_SERVER_URL", "/"))
    return f"{protocol}://{ip}:{port}{base}voila/query/{kernel_id}"


def wait_for_visitor() -> None:
    """Block until the page is requested (preheated kernel only); elsewhere return at once.

    JupyterLab, nbclient and Voilà without preheating return at once. If Voilà cannot be
    reached the page renders anyway: a visitor must never wait on this.
    """
    url = query_url()
    if url is None:
        return
    received: dict[str, str] = {}

    def listen() -> None:
        # The kernel's own loop is busy running this cell: a loop of our own, in a thread.
        from tornado.websocket import websocket_connect  # ipykernel has loaded tornado

        async def once() -> str | bytes | None:
            conn = await websocket_connect(url, connect_timeout=CONNECT_TIMEOUT_S)
            try:
                return await conn.read_message()
            finally:
                conn.close()

        try:
            message = asyncio.run(once())
            if message:
                received.update({str(k): str(v) for k, v in json.loads(message).items()})
        except Exception:
            pass

    thread = threading.Thread(target=listen, name="elegere-wait-for-visitor", daemon=True)
    thread.start()
    thread.join()
    os.environ.update(received)  # QUERY_STRING and friends, as voila.utils sets them
