"""The fixtures every test folder shares (tests/ and tools/tests/ import them into their conftest.py): an
offline hub, a per-session graph cache, and the CLI run in-process."""
import os
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dpiqa_cli import _tv_compat  # noqa: E402,F401  (tests import torchvision themselves; see DEVELOPERS.md)


@pytest.fixture(scope="session", autouse=True)
def _graph_cache(tmp_path_factory):
    """The CPU runtime's exported graphs go to one folder per test session, never the user's cache."""
    os.environ["DPIQA_CACHE_DIR"] = str(tmp_path_factory.mktemp("dpiqa-cache"))


@pytest.fixture
def run_cli(capsys):
    """Run `dpiqa ARGS` in-process; return (exit code, stdout, stderr)."""
    from dpiqa_cli.cli import main

    def run(*args):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
