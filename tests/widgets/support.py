"""Helpers of the widget tests: typing into a form, walking a widget tree."""

from __future__ import annotations

from collections.abc import Iterator

import ipywidgets

from elegere_widgets.widgets.forms import ServerForm
from tests.fixtures.smtp import ACCOUNT, PASSWORD, SmtpPeer


def fill_smtp(
    form: ServerForm,
    peer: SmtpPeer,
    *,
    name: str = "Sales relay",
    password: str = PASSWORD,
    sender: str = "sales@acme.example",
) -> None:
    """Type the settings of the peer as a person would, field after field."""
    f = form.fields
    f["name"].value = name
    f["server"].value = peer.host
    f["use_ssl"].value = True  # STARTTLS required: the peer is on another port than 465
    f["port"].value = peer.port
    f["account"].value = ACCOUNT
    f["sender_address"].value = sender
    f["password"].value = password


def walk(root: ipywidgets.Widget) -> Iterator[ipywidgets.Widget]:
    """Every widget a person can see under ``root``: hidden ones and their subtrees left out,
    and of a Stack only the selected page."""
    stack = [root]
    while stack:
        widget = stack.pop()
        layout = getattr(widget, "layout", None)
        if layout is not None and layout.display == "none":
            continue
        yield widget
        children = list(getattr(widget, "children", ()))
        if isinstance(widget, ipywidgets.Stack):
            index = widget.selected_index
            children = [children[index]] if index is not None else []
        stack.extend(children)


def shown(root: ipywidgets.Widget, widget: ipywidgets.Widget) -> bool:
    """Whether ``widget`` is in what ``root`` shows."""
    return any(w is widget for w in walk(root))


def live_widgets() -> int:
    """How many widget models the kernel holds right now."""
    from ipywidgets.widgets import widget

    return len(widget._instances)
