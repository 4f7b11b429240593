"""The colours of the widgets and the dashboard: the one place a colour value is written.

The stylesheet (:mod:`.theme`) turns each into a CSS custom property ``--elegere-<name>``,
and markup and layouts use ``var(--elegere-<name>)`` (:func:`var`): a theme or a dark mode
overrides the properties, nothing else. Values are Material Design colours.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

PALETTE: Mapping[str, str] = MappingProxyType(
    {
        "text": "#455a64",  # an info message
        "text-strong": "#37474f",  # text on a chip
        # Text colours keep WCAG AA contrast (4.5:1) on white and on warning-background.
        "muted": "#546e7a",  # a field's note, a stage's time, a summary's label
        "faint": "#5a7380",  # details, a step still to come
        "caption": "#546e7a",  # the dashboard's captions
        "ok": "#2e7d32",
        "error": "#c62828",
        "busy": "#1565c0",
        "accent": "#1565c0",  # the current step, the dashboard's header line
        "on-accent": "white",
        "frame": "#cfd8dc",  # the wizard's, the update form's and the sign-in form's frame
        "danger-frame": "#ef9a9a",  # the delete dialog's frame
        "row-line": "#eceff1",  # the line under a table row
        "chip": "#eceff1",  # the "Inherited from Organization" chip
        "highlight": "#43a047",  # the frame of the row just added or saved
        "warning-line": "#ffa000",  # a notice's left bar
        "warning-background": "#fff8e1",
        # Health badges and the check strip: text on its own light background, AA or better.
        "ok-strong": "#1b5e20",
        "ok-background": "#e8f5e9",
        "warning-text": "#7a4f01",
        "error-strong": "#b71c1c",
        "error-background": "#ffebee",
    }
)


def var(name: str) -> str:
    """``var(--elegere-<name>)``, for a layout or markup; KeyError for a colour not in the palette."""
    if name not in PALETTE:
        raise KeyError(f"{name!r} is not a colour of the palette: {', '.join(PALETTE)}")
    return f"var(--elegere-{name})"
