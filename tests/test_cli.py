"""Usage mistakes: one `error:` line on stderr, click's suggestion kept, exit 2, never a traceback.

Run under the newest Typer the bounds allow (CI's normal install) and under the oldest (CI runs this file
again with typer 0.20.0 and click 8.1 first on the path). click words its messages differently from one
version to the next, so the tests check the exit code, the one line and its key words, not the wording.
"""
from __future__ import annotations

import pytest


def _one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    return err.rstrip("\n")


# (arguments, words the line must hold (case-insensitive), the command whose --help it points to)
USAGE_ERRORS = [
    (["scor", "x"], ["no such command", "'scor'", "score"], "dpiqa"),
    (["score", "--modle", "x"], ["no such option", "--modle", "--model"], "dpiqa score"),
    (["score", "--batch-size", "abc", "x"], ["invalid value", "--batch-size", "integer"], "dpiqa score"),
    (["score", "--max-side", "big", "x"], ["invalid value", "--max-side", "integer"], "dpiqa score"),
    (["distill"], ["missing option", "--dataset"], "dpiqa distill"),
    (["distill", "--dataset", "csv"], ["missing option", "--root"], "dpiqa distill"),
    (["train-teacher", "--dataset", "csv", "--root", ".", "--no-teacher"], ["no such option", "--no-teacher"],
     "dpiqa train-teacher"),
    (["--devise", "cpu", "models"], ["no such option", "--devise", "--device"], "dpiqa"),
    (["import-weights"], ["missing argument", "src"], "dpiqa import-weights"),
]


@pytest.mark.parametrize("args,words,where", USAGE_ERRORS, ids=[" ".join(a) for a, _, _ in USAGE_ERRORS])
def test_usage_mistakes_are_one_line_and_exit_2(run_cli, args, words, where):
    code, out, err = run_cli(*args)
    assert code == 2 and out == ""
    line = _one_line(err)
    assert line.startswith("error: ") and line.endswith(f"(see `{where} --help`)"), line
    assert all(w in line.lower() for w in words), (words, line)


def test_user_errors_are_one_line_and_exit_2(run_cli, tmp_path):
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    for args, words in ((["score", "--precision", "fp8", str(tmp_path)], "--precision"),
                        (["score", "--runtime", "tensorrt", str(tmp_path)], "--runtime"),
                        (["score", "--runtime", "onnx", "-m", "tiny-student", str(tmp_path)], "--runtime onnx"),
                        (["score"], "nothing to score"),
                        (["bench", "--split", "nope"], "--split"),
                        (["distill", "--dataset", "nope", "--root", str(tmp_path), "--no-teacher"], "unknown dataset"),
                        (["distill", "--dataset", "csv", "--root", str(tmp_path), "--split", "x", "--no-teacher"], "--split")):
        code, _, err = run_cli(*args)
        assert code == 2 and _one_line(err).startswith("error: ") and words in err, (args, err)


def test_bare_dpiqa_prints_the_help(run_cli):
    code, out, err = run_cli()
    assert code == 0 and "Usage: dpiqa" in out and "score" in out and err == ""


def test_help_and_version_exit_0(run_cli):
    from dpiqa_cli import __version__

    assert run_cli("--version")[:2] == (0, f"dpiqa {__version__}\n")
    code, out, _ = run_cli("distill", "--help")
    assert code == 0 and "--no-teacher" in out and "--grad-checkpointing" not in out  # teacher-only option
    code, out, _ = run_cli("train-teacher", "--help")
    assert code == 0 and "--grad-checkpointing" in out and "--freeze-blocks" not in out


def test_python_without_the_dependencies_gets_one_error_line():
    import subprocess
    import sys

    code = ("import sys, runpy; sys.modules['typer'] = None; sys.argv = ['dpiqa', 'scor', 'x']; "
            "runpy.run_module('dpiqa_cli', run_name='__main__')")
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == "", r
    line = _one_line(r.stderr)
    assert line.startswith("error: ") and "typer" in line and "pip install -e ." in line, line
