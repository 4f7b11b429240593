"""Shared pieces of the views: the status line, handlers that own their errors, closing a tree.

ipywidgets' ``CallbackDispatcher`` only logs a handler's exception and Voilà shows nothing at
all, so every handler is wrapped in :func:`handles_errors`: an ``ElegereError`` goes to the
view's ``show_error`` (a readable message in its status line or next to a field); anything
else is a bug: it is logged with its traceback and the status line says so.
"""

from __future__ import annotations

import functools
import html
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import ipywidgets

from ..errors import ElegereError

logger = logging.getLogger("elegere_widgets.widgets")

#: Runs a function in the background: a new thread by default, the caller itself in tests.
Runner = Callable[[Callable[[], None]], None]

BUG_MESSAGE = "Something went wrong on our side (a bug); the details are in the log."

_ICONS = {"info": "", "ok": "✓ ", "error": "✗ ", "busy": ""}

# A small spinner: SVG animations run inside innerHTML.
SPINNER = (
    '<svg class="elegere-spinner" width="14" height="14" viewBox="0 0 50 50">'
    '<circle cx="25" cy="25" r="20" fill="none" stroke="currentColor" stroke-width="6" '
    'stroke-dasharray="90 150"><animateTransform attributeName="transform" type="rotate" '
    'from="0 25 25" to="360 25 25" dur="0.9s" repeatCount="indefinite"/></circle></svg> '
)


def start_thread(work: Callable[[], None]) -> None:
    """The default :data:`Runner`: a daemon thread, so a hung test never blocks the kernel."""
    threading.Thread(target=work, name="elegere-widgets-worker", daemon=True).start()


def esc(text: object) -> str:
    """Text for an HTML widget: names come from users and must not become markup."""
    return html.escape(str(text), quote=True)


def css(widget: ipywidgets.DOMWidget, *classes: str) -> Any:
    """Add CSS classes (the browser tests find controls by them); the widget back."""
    for name in classes:
        widget.add_class(name)
    return widget


def set_visible(widget: ipywidgets.DOMWidget, visible: bool) -> None:
    widget.layout.display = None if visible else "none"


class StatusLine(ipywidgets.HTML):
    """One line that says what happened: info, success, error, or busy with a spinner.

    ``text`` and ``kind`` hold the plain message and its kind, for tests and for logs.
    """

    def __init__(self, *classes: str) -> None:
        super().__init__(value="")
        css(self, "elegere-status-line", *classes)
        self.text = ""
        self.kind = ""

    def _show(self, kind: str, message: str, *, spinner: bool = False) -> None:
        if self.kind:
            self.remove_class(f"elegere-status-{self.kind}")
        self.text, self.kind = message, kind
        if not message:
            self.value = ""
            return
        self.add_class(f"elegere-status-{kind}")
        lead = SPINNER if spinner else _ICONS[kind]
        self.value = f'<span class="elegere-tone-{kind}">{lead}{esc(message)}</span>'

    def info(self, message: str) -> None:
        self._show("info", message)

    def ok(self, message: str) -> None:
        self._show("ok", message)

    def error(self, message: str) -> None:
        self._show("error", message)

    def busy(self, message: str) -> None:
        self._show("busy", message, spinner=True)

    def clear(self) -> None:
        self._show("", "")


class ErrorOwner(Protocol):
    """A view whose handlers own their errors."""

    status: StatusLine

    def show_error(self, exc: ElegereError) -> None: ...


def handles_errors(method: Callable[..., Any]) -> Callable[..., None]:
    """Wrap a handler method: ElegereError → ``self.show_error``; anything else → log + status."""

    @functools.wraps(method)
    def handler(self: ErrorOwner, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, *args, **kwargs)
        except ElegereError as exc:
            self.show_error(exc)
        except Exception:
            logger.exception("Bug in %s", method.__qualname__)
            self.status.error(BUG_MESSAGE)

    return handler


def close_tree(root: ipywidgets.Widget) -> None:
    """Close a widget and everything under it: children, and their layouts and styles.

    ``Widget.close`` closes one model; a row of a Label and a Button is about eight (layout and
    style are widgets too), and the kernel keeps every one that is not closed.
    """
    seen: set[int] = set()
    stack: list[ipywidgets.Widget] = [root]
    while stack:
        widget = stack.pop()
        if id(widget) in seen:
            continue
        seen.add(id(widget))
        stack.extend(c for c in getattr(widget, "children", ()) if isinstance(c, ipywidgets.Widget))
        for attr in ("layout", "style"):
            part = getattr(widget, attr, None)
            if isinstance(part, ipywidgets.Widget):
                stack.append(part)
        ipywidgets.Widget.close(widget)  # not an override: views call close_tree from close()


def button(description: str, *classes: str, **kwargs: Any) -> ipywidgets.Button:
    """A button with its CSS classes."""
    return css(ipywidgets.Button(description=description, **kwargs), *classes)


def guard_callback(
    callback: Callable[..., Any], on_error: Callable[[ElegereError], None], status: StatusLine
) -> Callable[..., None]:
    """Like :func:`handles_errors`, for a plain function (a worker thread's body)."""

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            callback(*args, **kwargs)
        except ElegereError as exc:
            on_error(exc)
        except Exception:
            logger.exception("Bug in %s", getattr(callback, "__qualname__", callback))
            status.error(BUG_MESSAGE)

    return run
