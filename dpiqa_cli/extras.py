"""The optional extras of the install, and the one-line error a job gets when its extra is missing.

A job that needs one calls `require(extra, what)` before importing it, so a missing package is one
`error:` line (exit 2) naming the extra and the pip command, not a traceback from inside an import.
`importlib.util.find_spec` checks presence without importing.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from dpiqa_cli.errors import DpiqaError

# The modules each extra's jobs import (import names; pyproject.toml lists the distributions, and a test
# checks that the two agree).
TORCH = ("torch", "torchvision", "timm", "safetensors", "onnx")
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "torch": ("the torch extra", TORCH),
    "train": ("the training extra", TORCH + ("diffusers", "transformers", "accelerate")),
    "bench": ("the bench extra", ("openpyxl", "matplotlib")),
    "ray": ("the Ray extra", TORCH + ("ray", "pyarrow")),
}


class MissingExtra(DpiqaError):
    """A job needs an extra that is not installed (exit 2, as every problem the user can fix)."""


def _present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-removed package counts as absent
        return False


def missing(extra: str, modules: tuple[str, ...] | None = None) -> list[str]:
    """The modules of `extra` (or just `modules` of it) that are not installed."""
    return [m for m in (modules or EXTRAS[extra][1]) if not _present(m)]


def installed(extra: str, modules: tuple[str, ...] | None = None) -> bool:
    return not missing(extra, modules)


def pip_command(extra: str) -> str:
    """How to add `extra` to this install: from the registry, or, run from a clone, from that clone."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():
        return f'pip install "dpiqa[{extra}]"'
    where = "." if Path(os.getcwd()).resolve() == root else str(root)
    return f'pip install -e "{where}[{extra}]"'


def require(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise `<what> needs <the extra>: <pip command>` unless every module of `extra` (or `modules`) is there."""
    absent = missing(extra, modules)
    if absent:
        raise MissingExtra(f"{what} needs {EXTRAS[extra][0]} ({absent[0]} is not installed): {pip_command(extra)}")
