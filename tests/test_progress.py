"""The one progress display: a bar on a terminal, plain lines in a log, and plain lines on a terminal that
reports no width (some CI consoles and serial terminals say 0 columns, where a bar shows nothing)."""
from __future__ import annotations

import os
import sys

from dpiqa_cli.progress import Progress


def _run(monkeypatch, capsys, isatty: bool, columns: int) -> tuple[str, str]:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: isatty, raising=False)
    monkeypatch.setattr(sys.stderr, "fileno", lambda: 2, raising=False)
    monkeypatch.setattr(os, "get_terminal_size", lambda *a: os.terminal_size((columns, 24)))
    bar = Progress(100, "processed", unit="file", every_s=0.0)
    for i in range(100):
        bar.update(1, failed=i // 50)
    bar.close()
    return bar.mode, capsys.readouterr().err


def test_a_terminal_of_0_columns_gets_plain_progress_lines(monkeypatch, capsys):
    mode, err = _run(monkeypatch, capsys, isatty=True, columns=0)
    lines = err.splitlines()
    assert mode == "log" and len(lines) == 100
    assert lines[-1].startswith("processed 100/100 (1 failed), ") and lines[-1].endswith(" s")


def test_a_pipe_gets_plain_lines_and_a_terminal_a_bar(monkeypatch, capsys):
    assert _run(monkeypatch, capsys, isatty=False, columns=120)[0] == "log"
    assert _run(monkeypatch, capsys, isatty=True, columns=120)[0] == "off"  # the bar ran, and was closed
