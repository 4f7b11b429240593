"""The installed version: defined once, as ``version`` in pyproject.toml."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("elegere-widgets")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0"
