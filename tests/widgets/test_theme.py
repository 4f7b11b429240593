"""One stylesheet and one palette: colours and inline styles live nowhere else in the package."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import ipywidgets
import pytest

import elegere_widgets
from elegere_widgets.client import Client
from elegere_widgets.widgets import EmailServersPanel
from elegere_widgets.widgets.palette import PALETTE, var
from elegere_widgets.widgets.theme import STYLESHEET

PACKAGE = Path(elegere_widgets.__file__).parent
PALETTE_FILE = PACKAGE / "widgets" / "palette.py"
HEX_COLOUR = re.compile(r"(?<![\w&])#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})\b")
INLINE_STYLE = re.compile(r"""\bstyle=\\?["']""")
CUSTOM_PROPERTY = re.compile(r"var\(--elegere-([\w-]+)\)")

MakePanel = Callable[..., EmailServersPanel]


def _sources() -> list[Path]:
    return sorted(
        p for p in PACKAGE.rglob("*") if p.suffix in {".py", ".css", ".html", ".js", ".json"}
    )


def _hits(pattern: re.Pattern[str], *, skip: Path | None = None) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in _sources()
        if path != skip
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]


def test_hex_colours_are_written_only_in_the_palette() -> None:
    assert _hits(HEX_COLOUR, skip=PALETTE_FILE) == [], "use palette.var(...) or a class"


def test_markup_carries_no_inline_style() -> None:
    assert _hits(INLINE_STYLE) == [], "give the element an elegere-* class and a rule in theme.py"


def test_every_custom_property_used_is_a_colour_of_the_palette() -> None:
    used = {m for path in _sources() for m in CUSTOM_PROPERTY.findall(path.read_text("utf-8"))}
    assert used, "the stylesheet uses the palette's properties"
    assert used <= set(PALETTE), f"not in the palette: {sorted(used - set(PALETTE))}"
    for name, value in PALETTE.items():
        assert f"--elegere-{name}: {value};" in STYLESHEET
    assert var("error") == "var(--elegere-error)"
    with pytest.raises(KeyError, match="not a colour of the palette"):
        var("eror")


def _styles_in(root: ipywidgets.Widget) -> list[ipywidgets.Widget]:
    found, stack = [], [root]
    while stack:
        widget = stack.pop()
        stack.extend(getattr(widget, "children", ()))
        if "<style>" in str(getattr(widget, "value", "")):
            found.append(widget)
    return found


def test_the_panel_carries_the_stylesheet_once_and_hidden(
    admin: Client, make_panel: MakePanel
) -> None:
    panel = make_panel(admin)
    panel.refresh()
    # What the status line and the wizard's steps show takes its colour from the sheet.
    assert 'class="elegere-tone-info"' in panel.status.value
    assert panel.children[0] is panel.stylesheet
    assert panel.stylesheet.layout.display == "none"  # a <style> applies from a hidden element
    assert _styles_in(panel) == [panel.stylesheet]
    assert panel.stylesheet.value == f"<style>{STYLESHEET}</style>"
    panel.add_button.click()
    assert panel.wizard is not None
    assert _styles_in(panel) == [panel.stylesheet]
    assert "elegere-step-chip-current" in panel.wizard.step_labels[0].value
    for name in ("elegere-tone-info", "elegere-step-chip-current"):
        assert f".{name} {{" in STYLESHEET


def _luminance(colour: str) -> float:
    named = {"white": "#ffffff"}
    hex_digits = named.get(colour, colour).lstrip("#")
    channels = [int(hex_digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(foreground: str, background: str) -> float:
    high, low = sorted((_luminance(PALETTE[foreground]), _luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


# Every text colour on each background it is shown on (the page's white, a notice, a chip).
TEXT_ON = [
    *((text, "#ffffff") for text in ("text", "muted", "faint", "caption", "ok", "error", "busy")),
    ("faint", PALETTE["warning-background"]),
    ("text", PALETTE["warning-background"]),
    ("text-strong", PALETTE["chip"]),
    ("on-accent", PALETTE["accent"]),
]


@pytest.mark.parametrize(("text", "background"), TEXT_ON)
def test_text_colours_meet_wcag_aa_contrast(text: str, background: str) -> None:
    # WCAG 2 AA: 4.5:1 for text of normal size (a step still to come was 2.6:1).
    assert _contrast(text, background) >= 4.5, (text, background)
