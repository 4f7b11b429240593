"""The declared public surface is what the package exports, and the layers keep their bounds."""

from __future__ import annotations

import ast
from pathlib import Path

import elegere_widgets
from elegere_widgets import errors, models

PACKAGE = Path(elegere_widgets.__file__).parent


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


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            prefix = "." * node.level
            names.add(prefix + node.module)
    return names


FORBIDDEN = {
    "models": ("httpx", "sqlalchemy", "ipywidgets", "fastapi", "pandas"),
    "connectivity": ("fastapi", "sqlalchemy", "ipywidgets", "pandas", "..client", "..server"),
    "server": ("ipywidgets", "pandas", "..client", "...client", "..widgets", "...widgets"),
    "client": ("sqlalchemy", "fastapi", "ipywidgets", "pandas", "smtplib", "..server"),
}


def test_layers_do_not_import_what_they_must_not() -> None:
    for package, banned in FORBIDDEN.items():
        for path in (PACKAGE / package).rglob("*.py"):
            for name in _imports(path):
                assert not any(name == b or name.startswith(b + ".") for b in banned), (
                    f"{path.relative_to(PACKAGE)} imports {name}"
                )
