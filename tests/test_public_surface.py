"""The declared public surface is what the package exports; the service loads no notebook code.

The static layer rules are import-linter contracts (pyproject.toml, `make lint`)."""

from __future__ import annotations

import elegere_widgets
from elegere_widgets import errors, models


def _public(module: object) -> set[str]:
    return {n for n in vars(module) if not n.startswith("_") and n not in {"annotations"}}


def test_all_lists_exactly_the_public_names() -> None:
    for module in (elegere_widgets, models, errors):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"
    assert set(models.__all__) <= _public(models)
    assert set(errors.__all__) <= _public(errors)


def test_the_service_does_not_load_the_widgets() -> None:
    import subprocess
    import sys

    code = (
        "import sys, elegere_widgets.server.app, elegere_widgets.server.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('ipywidgets', 'pandas', 'msal') or m.startswith('elegere_widgets.widgets')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
