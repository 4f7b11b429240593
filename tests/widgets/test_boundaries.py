"""The widgets stay a layer over the client: no service, no sockets, no database."""

from __future__ import annotations

import ast
from pathlib import Path

import elegere_widgets.widgets

PACKAGE = Path(elegere_widgets.widgets.__file__).parent
BANNED = ("sqlalchemy", "fastapi", "smtplib", "socket", "..server", "..connectivity")


def test_the_widgets_import_nothing_they_must_not() -> None:
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = ["." * node.level + node.module]
            else:
                continue
            for name in names:
                assert not any(name == b or name.startswith(b + ".") for b in BANNED), (
                    f"{path.name} imports {name}"
                )


def test_only_the_panel_imports_the_client() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.name == "panel.py":
            continue
        assert "..client" not in path.read_text(), f"{path.name} talks to the client"
