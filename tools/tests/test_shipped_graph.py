"""A checkpoint's shipped ONNX graph (`x.graph.onnx` + `x.graph.json` beside `x.safetensors`, written by
`python -m tools.bundle_graph`): used, with no export, exactly when it stands for the checkpoint; else the
export-and-cache path, with one note. The bundled model ships one (tests/test_packaging.py checks it)."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from core_fixtures import EXAMPLES, NOT_CORE, ROOT, core_env, run_without, tiny_checkpoint

from dpiqa_cli.models.checkpoint_config import sha256_file
from dpiqa_cli.models.registry import BUNDLED_FILE
from dpiqa_cli.scoring import graph_cache
from tools.bundle_graph import bundle_graph


def _score(run_cli, ckpt, out):
    code, _, err = run_cli("score", EXAMPLES, "-w", ckpt, "--device", "cpu", "-q", "-o", out)
    assert code == 0, err
    return pd.read_csv(out), [line for line in err.splitlines() if line.startswith("note:")]


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A tiny checkpoint with its shipped graph, and an empty graph cache."""
    monkeypatch.setenv("DPIQA_CACHE_DIR", str(tmp_path / "cache"))
    ckpt = tiny_checkpoint(tmp_path / "ship")
    graph = bundle_graph(ckpt)
    assert graph == tmp_path / "ship" / "tiny.graph.onnx" and graph.with_suffix(".json").is_file()
    return ckpt, graph


def test_a_shipped_graph_is_the_export_the_cache_would_hold_and_is_used_as_it_is(shipped, tmp_path, run_cli):
    ckpt, graph = shipped
    config = json.loads(graph.with_suffix(".json").read_text())
    assert config["source"] == "tiny.safetensors" and config["source_sha256"] == sha256_file(ckpt)
    got, notes = _score(run_cli, ckpt, tmp_path / "shipped.csv")
    assert notes == [] and not list((tmp_path / "cache").rglob("*.onnx"))  # no export
    plain = tmp_path / "plain"  # the same checkpoint without its graph: exported into the cache
    plain.mkdir()
    for f in ("tiny.safetensors", "tiny.json"):
        shutil.copy(ckpt.parent / f, plain / f)
    ref, _ = _score(run_cli, plain / "tiny.safetensors", tmp_path / "cached.csv")
    [cached] = (tmp_path / "cache").rglob("*.onnx")
    assert sha256_file(cached) == sha256_file(graph)  # the export is deterministic: the very same graph
    pd.testing.assert_frame_equal(got.drop(columns="path"), ref.drop(columns="path"), check_exact=True)


@pytest.mark.parametrize("damage", ["other-checkpoint", "view", "corrupt", "no-json"])
def test_a_shipped_graph_that_does_not_stand_for_its_checkpoint_is_not_used(shipped, tmp_path, run_cli, damage):
    ckpt, graph = shipped
    good, _ = _score(run_cli, ckpt, tmp_path / "good.csv")
    config_file = graph.with_suffix(".json")
    config = json.loads(config_file.read_text())
    if damage == "other-checkpoint":
        config_file.write_text(json.dumps({**config, "source_sha256": "0" * 64}))
    elif damage == "view":
        config_file.write_text(json.dumps({**config, "view": {"name": "patches"}}))
    elif damage == "corrupt":
        data = bytearray(graph.read_bytes())
        data[len(data) // 2] ^= 0xFF
        graph.write_bytes(bytes(data))
    else:
        config_file.unlink()
    got, notes = _score(run_cli, ckpt, tmp_path / "got.csv")
    assert len(notes) == 1 and "the ONNX graph shipped with tiny.safetensors cannot be used" in notes[0], notes
    reason = {"other-checkpoint": "source_sha256 differ", "view": "view differ", "corrupt": "corrupt",
              "no-json": "tiny.graph.json is missing"}[damage]
    assert reason in notes[0], notes
    assert len(list((tmp_path / "cache").rglob("*.onnx"))) == 1  # exported once instead
    pd.testing.assert_frame_equal(got, good, check_exact=True)
    _, notes = _score(run_cli, ckpt, tmp_path / "again.csv")
    assert notes == []  # the cached export is trusted from then on, silently


def test_without_torch_a_checkpoint_without_a_usable_graph_is_one_line(tmp_path):
    """The bundled model without its graph (a build that forgot it), and a damaged shipped graph."""
    weights = tmp_path / "weights"
    weights.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(ROOT / "weights" / BUNDLED_FILE.replace(".safetensors", suffix), weights)
    ckpt = tiny_checkpoint(tmp_path / "ship")
    (tmp_path / "ship" / "tiny.graph.onnx").write_bytes(b"not a graph")
    bundled, damaged = run_without(NOT_CORE, [["score", EXAMPLES / "coffee.jpg"],
                                              ["score", EXAMPLES / "coffee.jpg", "-w", ckpt]],
                                   tmp_path, core_env(tmp_path, weights))
    for got, why in ((bundled, "dpiqa-student-lite0-synth.graph.onnx is missing"),
                     (damaged, "tiny.graph.json is missing or unreadable")):
        assert got["code"] == 2 and got["err"].count("\n") == 1, got
        assert f"its shipped graph cannot be used: {why}" in got["err"] and "needs the torch extra" in got["err"], got
    assert not graph_cache.shipped_check(weights / BUNDLED_FILE).found  # nothing there: only the bundled file tells
