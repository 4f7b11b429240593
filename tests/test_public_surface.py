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
        exported = set(module.__all__)
        assert exported <= _public(module), module.__name__
        for name in exported:
            assert getattr(module, name) is not None


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
