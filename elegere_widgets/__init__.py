"""elegere-widgets: manage the email servers of an eLegere-style Workspace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import models
from ._version import __version__
from .client import Client
from .errors import ElegereError

if TYPE_CHECKING:
    from .widgets import EmailServersPanel

__all__ = ["Client", "ElegereError", "EmailServersPanel", "__version__", "models"]


def __getattr__(name: str) -> Any:
    # The widgets load ipywidgets: only when asked for, so the service never imports it.
    if name == "EmailServersPanel":
        from .widgets import EmailServersPanel

        return EmailServersPanel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
