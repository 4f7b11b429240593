"""docs/architecture.md matches the tree: every package has its row, every file it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
PACKAGE = ROOT / "elegere_widgets"


def test_every_package_has_a_row_in_the_layers_table() -> None:
    rows = set(re.findall(r"^\| `([a-z_]+)/` \|", DOC, flags=re.MULTILINE))
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages <= rows, f"packages the page does not describe: {sorted(packages - rows)}"
    assert rows <= packages, f"rows for packages that are gone: {sorted(rows - packages)}"


def test_every_file_the_page_names_exists() -> None:
    named = set(re.findall(r"`((?:[a-z_]+/)*[a-z_]+\.py)`", DOC))
    tree = {
        p.relative_to(ROOT).as_posix()
        for top in ("elegere_widgets", "tests")
        for p in (ROOT / top).rglob("*.py")
    }
    # The page names files by their path below a package ("worker/health.py", "db.py").
    missing = sorted(f for f in named if not any(t == f or t.endswith("/" + f) for t in tree))
    assert not missing, f"the page names files that do not exist: {missing}"
    assert len(named) >= 15, sorted(named)
