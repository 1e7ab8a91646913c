"""The outcome every usage mistake must have, in one place: exit 2 and one `error:` line holding key words."""
from __future__ import annotations


def usage_error(code: int, err: str, *words: str) -> str:
    """Assert exit 2 and exactly one line on stderr, `error: ...`, holding each of `words` (case-insensitive:
    click and Typer word their messages differently from one version to the next); return the line."""
    assert code == 2, (code, err)
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    line = err.rstrip("\n")
    assert line.startswith("error: "), line
    missing = [w for w in words if w.lower() not in line.lower()]
    assert not missing, (missing, line)
    return line
