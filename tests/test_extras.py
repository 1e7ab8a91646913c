"""The core install (no torch) and its extras: what the core runs, and the one-line error of every job that
needs a missing extra.

An install without an extra is simulated in a subprocess whose first import finder refuses each of the
extra's packages, so that importing one fails and `find_spec` reports it absent, as in a venv without it.
(CI also runs the real thing: the wheel in a fresh venv with the core alone; .ci/run.)
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomllib
from core_fixtures import EXAMPLES, NOT_CORE, ROOT, core_env, run_without, tiny_checkpoint
from PIL import Image

from dpiqa_cli import extras
from dpiqa_cli.models.registry import BUNDLED_FILE
from dpiqa_cli.scoring import graph_cache


@pytest.fixture(scope="module")
def bundled_dir(tmp_path_factory) -> Path:
    """A weights folder with the bundled checkpoint and its shipped graph: the repository's own where it is
    there, else one exported here as the build exports it (only tests/test_packaging.py checks the committed file)."""
    if graph_cache.shipped_check(ROOT / "weights" / BUNDLED_FILE).usable:
        return ROOT / "weights"
    from dpiqa_cli.scoring.onnx_graph import export_onnx

    folder = tmp_path_factory.mktemp("bundled")
    for suffix in (".safetensors", ".json"):
        shutil.copy(ROOT / "weights" / BUNDLED_FILE.replace(".safetensors", suffix), folder)
    export_onnx(model=None, weights=folder / BUNDLED_FILE, out=graph_cache.shipped_graph(folder / BUNDLED_FILE))
    assert graph_cache.shipped_check(folder / BUNDLED_FILE).usable
    return folder


def _dists(spec: str) -> set[str]:
    """The distributions an extra installs, its references to other extras of dpiqa followed."""
    extras_ = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    out = set()
    for req in extras_[spec]:
        name = re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower().replace("-", "_")
        if name == "dpiqa":
            for ref in re.search(r"\[(.*)\]", req).group(1).split(","):
                out |= _dists(ref.strip())
        else:
            out.add(name)
    return out


def test_each_extras_modules_come_from_that_extra_in_pyproject():
    for name, (_, modules) in extras.EXTRAS.items():
        assert set(modules) <= _dists(name), name  # pip install "dpiqa[name]" brings what require() checks
    assert set(extras.TORCH) == _dists("torch")
    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not {re.match(r"[A-Za-z0-9_.-]+", r).group(0) for r in core} & set(NOT_CORE)


def test_the_core_scores_benches_and_makes_galleries_without_any_extra(bundled_dir, tmp_path, run_cli, monkeypatch):
    """The bundled model scores from its shipped graph with no export, bit for bit as a full install does;
    decode workers, --mos (its report without the plot), bench, gallery, models, synth, another checkpoint
    whose graph is cached and an .onnx model run too."""
    mos = tmp_path / "mos.csv"
    names = sorted(p.name for p in EXAMPLES.glob("*.jpg"))
    pd.DataFrame({"name": names, "mos": np.linspace(1, 5, len(names))}).to_csv(mos, index=False)
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"path": [str(EXAMPLES / n) for n in names], "mos": np.linspace(0, 1, len(names))}).to_csv(
        data / "labels.csv", index=False)
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    Image.open(EXAMPLES / "coffee.jpg").resize((96, 64)).save(pristine / "coffee.png")
    tiny = tiny_checkpoint(tmp_path / "own")
    env = core_env(tmp_path, bundled_dir)
    monkeypatch.setenv("DPIQA_WEIGHTS_DIR", str(bundled_dir))
    monkeypatch.setenv("DPIQA_CACHE_DIR", str(tmp_path / "cache"))
    # another checkpoint, its graph exported and cached by a full install
    code, _, err = run_cli("score", EXAMPLES, "-w", tiny, "--device", "cpu", "-q", "-o", tmp_path / "tiny-full.csv")
    assert code == 0, err
    cached = sorted((tmp_path / "cache").rglob("*.onnx"))
    core = run_without(NOT_CORE, [
        ["score", EXAMPLES, "--device", "cpu", "-o", tmp_path / "core.csv"],
        ["score", EXAMPLES, "-j", "2", "-q", "-o", tmp_path / "pool.csv"],
        ["score", EXAMPLES, "-q", "-o", tmp_path / "m.csv", "--mos", mos],
        ["bench", "-d", "csv", "--root", data, "--split", "all", "-o", tmp_path / "bench"],
        ["gallery", tmp_path / "core.csv", "-o", tmp_path / "g.html"],
        ["models"],
        ["synth", pristine, tmp_path / "synth", "--types", "jpeg", "--levels", "2", "--workers", "0"],
        ["score", EXAMPLES, "-w", tiny, "-q", "-o", tmp_path / "tiny-core.csv"],
        ["score", EXAMPLES, "-m", graph_cache.shipped_graph(bundled_dir / BUNDLED_FILE), "-q", "-o", tmp_path / "x.csv"],
    ], tmp_path, env)
    for c in core:
        assert c["code"] == 0 and not c["torch"], c
    assert not [line for line in core[0]["err"].splitlines() if line.startswith("note:")], core[0]["err"]
    assert sorted((tmp_path / "cache").rglob("*.onnx")) == cached  # nothing was exported for the bundled model
    code, _, err = run_cli("score", EXAMPLES, "--device", "cpu", "-q", "-o", tmp_path / "full.csv")
    assert code == 0, err
    full = pd.read_csv(tmp_path / "full.csv")
    for name in ("core", "pool", "m"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / f"{name}.csv")[full.columns], full, check_exact=True)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "tiny-core.csv"), pd.read_csv(tmp_path / "tiny-full.csv"),
                                  check_exact=True)
    report = tmp_path / "m.report"
    assert (report / "report.json").is_file() and not (report / "scatter.png").exists()
    assert "No scatter.png: the plot needs matplotlib" in (report / "report.md").read_text()
    assert "SRCC" in core[3]["out"] + core[3]["err"]
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "check_report.py"), str(tmp_path / "bench")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr  # a whole report, less the plot, which it says it lacks
    assert (tmp_path / "g.html").stat().st_size > 0 and "student-lite0.synth" in core[5]["out"]
    assert len(pd.read_csv(tmp_path / "x.csv")) == len(full)  # an .onnx model, on ONNX Runtime
    assert len(pd.read_csv(tmp_path / "synth" / "synth.csv")) == 3  # the reference and its two levels


def test_every_job_that_needs_a_missing_extra_says_which_in_one_line(tmp_path):
    img = EXAMPLES / "coffee.jpg"
    other = tiny_checkpoint(tmp_path / "own", "other")
    spaq = tmp_path / "spaq"
    (spaq / "Annotations").mkdir(parents=True)
    (spaq / "Annotations" / "MOS and Image attribute scores.xlsx").write_bytes(b"")
    pth = tmp_path / "release.pth"
    pth.write_bytes(b"")
    cases = [  # (args, what the error names, the extra, packages absent)
        (["train-teacher", "-d", "koniq", "--root", tmp_path], "dpiqa train-teacher", "train", NOT_CORE),
        (["distill", "-d", "koniq", "--root", tmp_path], "dpiqa distill", "train", NOT_CORE),
        (["distill", "-d", "koniq", "--root", tmp_path], "dpiqa distill", "train", ("diffusers",)),
        (["score", img, "--runtime", "torch"], "--runtime torch", "torch", NOT_CORE),
        (["score", img, "--device", "cuda"], "--device cuda", "torch", NOT_CORE),
        (["score", img, "--device", "mps"], "--device mps", "torch", NOT_CORE),
        (["score", img, "--device", "cpu", "--precision", "bf16"], "--precision bf16", "torch", NOT_CORE),
        (["score", img, "--device", "cpu", "--compile"], "--compile", "torch", NOT_CORE),
        (["score", img, "-m", "tiny-student"], "scoring tiny-student", "torch", NOT_CORE),
        (["score", img, "-m", "tiny-student"], "scoring tiny-student", "torch", ("timm",)),
        (["score", img, "-m", "teacher"], "scoring teacher", "train", NOT_CORE),
        (["score", img, "-w", other], "scoring other.safetensors on the CPU exports its ONNX graph once",
         "torch", NOT_CORE),
        (["export", "-o", tmp_path / "x.onnx"], "dpiqa export", "torch", NOT_CORE),
        (["import-weights", pth, "--kind", "student", "-o", tmp_path / "s.safetensors"],
         "dpiqa import-weights --kind student", "torch", NOT_CORE),
        (["import-weights", pth, "--kind", "teacher", "-o", tmp_path / "t.safetensors"],
         "dpiqa import-weights --kind teacher", "train", NOT_CORE),
        (["bench", "--speed"], "dpiqa bench --speed", "torch", NOT_CORE),
        (["score", img, "--ray", "local"], "dpiqa score --ray", "ray", ("ray", "pyarrow")),
        (["bench", "-d", "spaq", "--root", spaq], "reading SPAQ's", "bench", ("openpyxl",)),
    ]
    env = core_env(tmp_path, ROOT / "weights")
    results = []
    for blocked in dict.fromkeys(c[3] for c in cases):  # one Python per set of absent packages
        todo = [c for c in cases if c[3] == blocked]
        results += zip(todo, run_without(blocked, [c[0] for c in todo], tmp_path, env))
    for (args, what, extra, _), got in results:
        err = got["err"]
        assert got["code"] == 2 and err.count("\n") == 1, (args, err)
        assert err.startswith(f"error: {what}") and f"needs {extras.EXTRAS[extra][0]}" in err, (args, err)
        assert f'pip install -e ".[{extra}]"' in err, (args, err)  # run from this clone: its own extra
    code = run_without(NOT_CORE, [["score", img, "--device", "tpu"]], tmp_path, env)[0]
    assert code["code"] == 2 and "--device must be auto, cpu" in code["err"]  # not a missing extra


def test_a_wheel_install_is_told_the_registry_command(tmp_path, monkeypatch):
    monkeypatch.setattr(extras, "__file__", str(tmp_path / "site-packages" / "dpiqa_cli" / "extras.py"))
    assert extras.pip_command("train") == 'pip install "dpiqa[train]"'
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(extras, "__file__", str(ROOT / "dpiqa_cli" / "extras.py"))
    assert extras.pip_command("torch") == f'pip install -e "{ROOT}[torch]"'


def test_without_torch_auto_is_the_cpu_even_beside_a_gpu(monkeypatch):
    from dpiqa_cli import device

    monkeypatch.setattr(device.sys, "platform", "linux")
    monkeypatch.setattr(device, "_GPU_DRIVER_NODES", (str(Path(__file__)),))  # "a driver is present"
    monkeypatch.setattr(device, "installed", lambda *a: False)
    monkeypatch.setattr(extras, "_present", lambda m: m != "torch")
    assert device.device_name("auto") == "cpu"
    with pytest.raises(extras.MissingExtra, match=r"--device cuda:1 needs the torch extra"):
        device.device_name("cuda:1")
