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


# ---- what a newcomer reads: every help screen and `dpiqa models` at 80 columns --------------------------

BOX = str.maketrans({c: " " for c in "│╭╮╰╯─┃┏┓┗┛━╇┡┩"})


def _commands() -> list[list[str]]:
    import typer

    from dpiqa_cli.cli import app

    return [[]] + [[name] for name in typer.main.get_command(app).commands]


def _texts(args: list[str]) -> list[str]:
    """The command's own help and its options' help, as the help screen shows them (rich markup resolved)."""
    import typer
    from rich.text import Text

    from dpiqa_cli.cli import app

    cmd = typer.main.get_command(app)
    for name in args:
        cmd = cmd.commands[name]
    texts = [cmd.help or ""] + [p.help or "" for p in cmd.params if getattr(p, "help", None)]
    return [Text.from_markup(t).plain for t in texts]


@pytest.mark.parametrize("args", _commands(), ids=lambda a: " ".join(a) or "dpiqa")
def test_every_help_fits_80_columns_without_cutting_a_word(run_cli, monkeypatch, args):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_cli(*args, "--help")
    assert code == 0
    long = [line for line in out.splitlines() if len(line) > 80]
    assert not long, long
    assert "…" not in out
    shown = set(out.translate(BOX).split())
    cut = [w for text in _texts(args) for w in text.split() if w not in shown]
    assert not cut, cut  # a word folded over two lines, or eaten as markup


def test_flags_render_as_flags_and_never_take_a_value(run_cli, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "80")
    _, out, _ = run_cli("score", "--help")
    for flag in ("--resume", "--compile", "--quiet"):
        line = next(line for line in out.splitlines() if f" {flag} " in line)
        assert "bool" not in line.lower(), line  # not `--resume <bool>` nor `--resume BOOLEAN`
    _, out, _ = run_cli("--help")
    assert "bool" not in out.lower()
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    code, out, err = run_cli("score", tmp_path, "--resume", "true", "-o", tmp_path / "s.csv")
    assert code == 2 and out == ""
    line = _one_line(err)
    assert line.startswith("error: true does not exist") and "take no value" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]  # nothing written


def test_a_path_that_does_not_exist_is_a_usage_error(run_cli, tmp_path):
    out = tmp_path / "x.csv"
    code, stdout, err = run_cli("score", "/no/such/dir", "--out", out)
    assert (code, stdout, err) == (2, "", "error: /no/such/dir does not exist\n")
    assert list(tmp_path.iterdir()) == []  # nothing written: no results, no sidecar, no errors file
    code, _, err = run_cli("score", tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "c.jpg")
    assert code == 2 and _one_line(err) == f"error: {tmp_path / 'a.jpg'} does not exist (and 2 more: " \
                                           f"{tmp_path / 'b.jpg'}, {tmp_path / 'c.jpg'})"


def test_a_misspelt_model_gets_a_suggestion(run_cli, tmp_path):
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    code, _, err = run_cli("score", tmp_path, "--model", "studnet")
    line = _one_line(err)
    assert code == 2 and line.startswith("error: unknown model 'studnet' (did you mean student?)"), line


def test_training_help_puts_the_required_options_first_in_grouped_panels(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    for command in ("train-teacher", "distill"):
        _, out, _ = run_cli(command, "--help")
        flags = [w for w in out.translate(BOX).split() if w.startswith("--") and w != "--help"]
        assert flags[:4] == ["--dataset", "--root", "--out", "--model"], flags[:6]
        heads = [line.split("─", 2)[1].strip() for line in out.splitlines() if line.startswith("╭─")]
        assert heads == ["Options", "Model", "Data and split", "Optimisation", "Running and outputs"], heads
        assert len(out.splitlines()) < 150, len(out.splitlines())  # was 178 and 194 in one narrow table


def test_bench_help_names_every_dataset_and_score_help_the_ray_extra(run_cli, monkeypatch):
    from dpiqa_cli.data.catalog import INFO

    monkeypatch.setenv("COLUMNS", "80")
    _, out, _ = run_cli("bench", "--help")
    shown = {w.strip(",.:") for w in out.translate(BOX).split()}
    assert set(INFO) <= shown, set(INFO) - shown
    _, out, _ = run_cli("score", "--help")
    assert 'pip install "dpiqa[ray]"' in " ".join(out.translate(BOX).split())


def test_models_fits_80_columns_piped(run_cli, monkeypatch):
    from dpiqa_cli.models.registry import list_specs

    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_cli("models")
    assert code == 0 and "…" not in out
    long = [line for line in out.splitlines() if len(line) > 80 and len(line.split()) > 1]
    assert not long, long  # only a path longer than the screen may stand alone on a longer line
    starts = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert [s.name for s in list_specs()] == starts[-len(list_specs()):]  # one block per entry
    assert "normalised MOS in [0, 1]" not in out.split("student-lite0.synth")[1].split("\n\n")[0]
