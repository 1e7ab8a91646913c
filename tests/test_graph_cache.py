"""The graph cache's folder and its trust rules, as units: a cached graph is used only when its record names
what it was built from and the sha256 of its graph and config; every kind of damage is a named problem."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dpiqa_cli.scoring import graph_cache
from dpiqa_cli.scoring.graph_cache import CACHE_FORMAT, _check_cached, cache_dir, sha256_file

EXPECTED = {"checkpoint_sha256": "ab" * 32, "model": "tiny-student", "input_size": 64, "view": {"name": "whole"},
            "mos_scale": None, "dataset": None, "calibration": None, "dpiqa": "0.1.0", "torch": "2.13.0",
            "onnxruntime": "1.32.0"}


def test_cache_dir_is_dpiqa_cache_dir_else_the_platforms_user_cache(tmp_path, monkeypatch):
    from platformdirs import user_cache_dir

    monkeypatch.setenv("DPIQA_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine" / "onnx"
    monkeypatch.delenv("DPIQA_CACHE_DIR")
    assert cache_dir() == Path(user_cache_dir("dpiqa", appauthor=False)) / "onnx"
    with monkeypatch.context() as m:  # the folder is platformdirs' answer, whatever the platform
        m.setattr("platformdirs.user_cache_dir", lambda name, appauthor=None: str(tmp_path / "pd" / name))
        assert cache_dir() == tmp_path / "pd" / "dpiqa" / "onnx"
    if os.name == "posix" and not (hasattr(os, "uname") and os.uname().sysname == "Darwin"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # Linux and the BSDs follow XDG
        assert cache_dir() == tmp_path / "xdg" / "dpiqa" / "onnx"
        monkeypatch.delenv("XDG_CACHE_HOME")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert cache_dir() == tmp_path / "home" / ".cache" / "dpiqa" / "onnx"


def _entry(folder: Path) -> tuple[Path, Path, Path]:
    """A sound cache entry as `cached_graph` writes it (the graph's bytes stand for an export)."""
    folder.mkdir(parents=True, exist_ok=True)
    graph = folder / "0123abcd.onnx"
    graph.write_bytes(bytes(range(256)) * 16)
    config = graph.with_suffix(".json")
    config.write_text(json.dumps({"input_size": 64, "view": {"name": "whole"}}))
    record = graph.with_suffix(".record.json")
    record.write_text(json.dumps({"format": CACHE_FORMAT, "built_from": EXPECTED, "sha256": sha256_file(graph),
                                  "config_sha256": sha256_file(config)}))
    return graph, record, config


def _edit_json(path: Path, edit) -> None:
    obj = json.loads(path.read_text())
    edit(obj)
    path.write_text(json.dumps(obj))


DAMAGE = {  # what is done to a sound entry -> the problem named (a part of it)
    "truncate": (lambda g, r, c: g.write_bytes(g.read_bytes()[:1000]), "corrupt"),
    "flip": (lambda g, r, c: g.write_bytes(g.read_bytes()[:2048] + b"\xff" + g.read_bytes()[2049:]), "corrupt"),
    "graph gone": (lambda g, r, c: g.unlink(), "graph file is missing"),
    "record torn": (lambda g, r, c: r.write_text("{not json"), "record is missing or unreadable"),
    "record gone": (lambda g, r, c: r.unlink(), "record is missing or unreadable"),
    "record not a dict": (lambda g, r, c: r.write_text("[1, 2]"), "another checkpoint or version"),
    "other format": (lambda g, r, c: _edit_json(r, lambda o: o.update(format="dpiqa-graph-cache/0")),
                     "another checkpoint or version"),
    "stale": (lambda g, r, c: _edit_json(r, lambda o: o["built_from"].update(onnxruntime="0.0.1")),
              "another checkpoint or version"),
    "config edited": (lambda g, r, c: _edit_json(c, lambda o: o.update(view={"name": "native"})),
                      "config is missing or was modified"),
    "config gone": (lambda g, r, c: c.unlink(), "config is missing or was modified"),
}


def test_a_sound_entry_is_used_and_none_is_not_found(tmp_path):
    graph, record, _ = _entry(tmp_path)
    assert _check_cached(graph, record, EXPECTED).usable
    absent = tmp_path / "other.onnx"
    check = _check_cached(absent, absent.with_suffix(".record.json"), EXPECTED)
    assert not check.found and not check.usable and check.problem is None


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_every_damage_is_a_named_problem(tmp_path, damage):
    graph, record, config = _entry(tmp_path)
    do, problem = DAMAGE[damage]
    do(graph, record, config)
    check = _check_cached(graph, record, EXPECTED)
    assert check.found and not check.usable and problem in check.problem, check
    # the same entry, asked for by another build (another key's facts), is never trusted either
    assert not _check_cached(*_entry(tmp_path / "again")[:2], {**EXPECTED, "dpiqa": "9"}).usable


def test_the_key_follows_every_fact_the_graph_is_built_from():
    for field in EXPECTED:
        assert graph_cache._key({**EXPECTED, field: "other"}) != graph_cache._key(EXPECTED), field
    assert graph_cache._key(dict(reversed(list(EXPECTED.items())))) == graph_cache._key(EXPECTED)
