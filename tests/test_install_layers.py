"""Each layer installs alone: a fresh venv with only the base install (plus one extra) imports
that layer, and the packages of the other layers are not there.

Two venvs, each installing the project from a copy of the source with the versions pinned in
requirements/all.lock as constraints: what `pip install 'elegere-widgets[audit]'` would bring."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "all.lock"

# Report what is importable without importing the absent ones' dependents.
PROBE = """
import importlib, importlib.util, json, sys
for name in sys.argv[1].split(","):
    importlib.import_module(name)
print(json.dumps({n: importlib.util.find_spec(n) is not None for n in sys.argv[2].split(",")}))
"""


def _clean_env() -> dict[str, str]:
    # The test run's PYTHONPATH points at the source tree: the venv must use what it installed.
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}


def _source_copy(tmp: Path) -> Path:
    # Building from a copy keeps build/ and *.egg-info out of the working tree.
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "elegere_widgets",
        src / "elegere_widgets",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    return src


def _venv_with(tmp: Path, src: Path, extra: str) -> Path:
    env_dir = tmp / f"venv-{extra}"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-c", str(LOCK), f"{src}[{extra}]"],
        check=True,
        env=_clean_env(),
        capture_output=True,
        text=True,
    )
    return python


def _probe(python: Path, imports: list[str], present: list[str]) -> dict[str, bool]:
    out = subprocess.run(
        [str(python), "-c", PROBE, ",".join(imports), ",".join(present)],
        check=True,
        env=_clean_env(),
        capture_output=True,
        text=True,
        cwd=python.parent,
    )
    return dict(json.loads(out.stdout))


SERVER_AND_NOTEBOOK = ["fastapi", "sqlalchemy", "uvicorn", "alembic", "msal", "ipywidgets", "voila"]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _source_copy(tmp_path_factory.mktemp("install"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_client_and_the_audits_install_without_the_service_or_the_widgets(
    source: Path, tmp_path: Path
) -> None:
    python = _venv_with(tmp_path, source, "audit")

    found = _probe(
        python,
        [
            "elegere_widgets",
            "elegere_widgets.client",
            "elegere_widgets.models",
            "elegere_widgets.errors",
            "elegere_widgets.audit",
        ],
        SERVER_AND_NOTEBOOK,
    )
    assert found == dict.fromkeys(SERVER_AND_NOTEBOOK, False)

    # The command is installed with the base package, and says what it needs instead of a trace.
    cli = subprocess.run(
        [str(python.parent / "elegere"), "serve"],
        env=_clean_env(),
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 1
    assert cli.stdout == ""
    assert cli.stderr.count("\n") == 1
    assert "pip install 'elegere-widgets[server]'" in cli.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_widgets_install_without_the_service(source: Path, tmp_path: Path) -> None:
    python = _venv_with(tmp_path, source, "widgets")

    absent = ["fastapi", "sqlalchemy", "uvicorn", "msal", "pandas", "pyarrow"]
    found = _probe(python, ["elegere_widgets.widgets"], [*absent, "ipywidgets"])
    assert found == {**dict.fromkeys(absent, False), "ipywidgets": True}

    version = subprocess.run(
        [
            str(python),
            "-c",
            "import elegere_widgets as e; print(e.__version__, e.EmailServersPanel)",
        ],
        check=True,
        env=_clean_env(),
        capture_output=True,
        text=True,
        cwd=python.parent,
    )
    # The version is defined once, in pyproject.toml, and read from the installed metadata.
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert version.stdout.split()[0] == declared


def test_the_lock_names_no_local_path_or_index() -> None:
    text = LOCK.read_text()
    pins = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert pins and all("==" in line for line in pins), [p for p in pins if "==" not in p]
    for marker in ("file:", "/opt/", "/work/", "--index-url", "--extra-index-url", "-e "):
        assert marker not in text, marker
