"""The tools' tests use the product tests' fixtures and helpers (tests/*_fixtures.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from session_fixtures import _graph_cache, run_cli  # noqa: E402,F401
