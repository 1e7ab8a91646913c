"""`dpiqa bench` on the KonIQ-layout fixture with tiny-student: the report's numbers equal compute_metrics on
the same predictions; --scores/--mos mode likewise; CI's report checker accepts it."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from usage_checks import usage_error

from dpiqa_cli.evaluate.metrics import compute_metrics

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def koniq(tmp_path_factory):
    root = tmp_path_factory.mktemp("fix") / "koniq"
    subprocess.run([sys.executable, str(REPO / "tools/make_koniq_fixture.py"), str(root)], check=True,
                   capture_output=True)
    return root


def check_report(d: Path):
    r = subprocess.run([sys.executable, str(REPO / "tools/check_report.py"), str(d)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_bench_official_matches_metrics(koniq, run_cli, tmp_path):
    from dpiqa_cli.data.datasets import read_dataset
    from dpiqa_cli.scoring.pipeline import score_paths

    out = tmp_path / "bench"
    code, _, err = run_cli("--quiet", "bench", "-m", "tiny-student", "--dataset", "koniq", "--root", koniq,
                           "--split", "official", "--out", out, "--device", "cpu", "-j", "0")
    assert code == 0, err
    check_report(out)
    rep = json.loads((out / "report.json").read_text())
    split = json.loads((out / "splits/split-official.json").read_text())
    df = read_dataset("koniq", koniq).set_index("id")
    assert split["test"] == df.index[df["split"] == "test"].tolist()
    # score the same test images independently: tiny-student's random weights are seeded per build
    pred = score_paths(df.loc[split["test"], "path"].tolist(), model="tiny-student", device="cpu", workers=0,
                       progress=False).set_index("path")["score"]
    want = compute_metrics(pred[df.loc[split["test"], "path"]].to_numpy(), df.loc[split["test"], "mos"].to_numpy())
    got = rep["splits"][0]["metrics"]
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-9), k
    assert rep["aggregate"]["srcc"]["median"] == pytest.approx(want["srcc"], abs=1e-9)
    md = (out / "report.md").read_text()
    assert "tiny-student" in md and "logistic" in md and "| official | 14 |" in md


def test_bench_seeds_and_cross_dataset(koniq, run_cli, tmp_path):
    out = tmp_path / "seeds"
    code, _, err = run_cli("--quiet", "bench", "-m", "tiny-student", "--dataset", "koniq10k", "--root", koniq,
                           "--seeds", "0-2", "--out", out, "--device", "cpu", "-j", "0")
    assert code == 0, err
    rep = json.loads((out / "report.json").read_text())
    assert [s["name"] for s in rep["splits"]] == ["seed 0", "seed 1", "seed 2"]
    srcc = [s["metrics"]["srcc"] for s in rep["splits"]]
    assert rep["aggregate"]["srcc"]["median"] == pytest.approx(float(np.median(srcc)))
    assert sorted(p.name for p in (out / "splits").iterdir()) == ["split-seed0.json", "split-seed1.json", "split-seed2.json"]
    code, _, err = run_cli("--quiet", "bench", "-m", "tiny-student", "--dataset", "koniq", "--root", koniq,
                           "--split", "all", "--out", tmp_path / "all", "--device", "cpu", "-j", "0")
    assert code == 0, err
    rep = json.loads((tmp_path / "all/report.json").read_text())
    assert rep["splits"][0]["metrics"]["n"] == 42 and "trained on" in (tmp_path / "all/report.md").read_text()


def test_bench_scores_and_mos_files(run_cli, tmp_path):
    rng = np.random.default_rng(0)
    names = [f"img{i}.jpg" for i in range(20)]
    mos = rng.uniform(1, 5, 20)
    score = mos / 5 + rng.normal(0, 0.1, 20)
    pd.DataFrame({"rank": range(1, 21), "path": [str(tmp_path / n) for n in names], "score": score, "width": 8,
                  "height": 8}).to_csv(tmp_path / "scores.csv", index=False)
    pd.DataFrame({"image_name": names, "MOS": mos}).to_csv(tmp_path / "mos.csv", index=False)
    out = tmp_path / "r"
    code, _, err = run_cli("bench", "--scores", tmp_path / "scores.csv", "--mos", tmp_path / "mos.csv", "--out", out)
    assert code == 0, err
    check_report(out)
    got = json.loads((out / "report.json").read_text())["splits"][0]["metrics"]
    want = compute_metrics(score, (mos - mos.min()) / (mos.max() - mos.min()))  # the file's range -> [0, 1]
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-9), k


def test_bench_bad_input_exits_2(run_cli, tmp_path):
    code, _, err = run_cli("bench", "--dataset", "koniq", "--root", tmp_path, "--out", tmp_path / "b")
    usage_error(code, err, "koniq10k_distributions_sets.csv not found")
    code, _, err = run_cli("bench", "--dataset", "koniq", "--root", tmp_path, "--seeds", "4-1")
    usage_error(code, err, "--seeds")
    code, _, err = run_cli("bench", "--split", "nope", "--dataset", "koniq", "--root", tmp_path)
    usage_error(code, err, "--split")


def test_speed_bench_writes_its_table_and_json(run_cli, tmp_path):
    """`bench --speed` (tiny model, tiny sizes: the code paths, not the numbers)."""
    import json

    code, out, err = run_cli("bench", "--speed", "--speed-models", "tiny-student", "--speed-batch-sizes", "1,2",
                             "--images", "4", "--naive-images", "2", "--rounds", "1", "--min-time", "0.1",
                             "--draft-images", "1", "--device", "cpu", "--out", tmp_path)
    assert code == 0, err
    rows = json.loads((tmp_path / "speed.json").read_text())["results"]
    assert [r["batch_size"] for r in rows] == [1, 2] and all(r["e2e_img_s"] > 0 and r["model_only_img_s"] > 0 for r in rows)
    assert "scoring speed" in out
    assert all(r["runtime"] == "torch" for r in rows)  # random weights: nothing to export
    code, _, err = run_cli("bench", "--speed", "--speed-batch-sizes", "0", "--out", tmp_path)
    usage_error(code, err, "--speed-batch-sizes")
    code, _, err = run_cli("bench", "--speed", "--speed-models", "tiny-student", "--runtime", "onnx", "--out", tmp_path)
    usage_error(code, err, "--runtime onnx needs a student checkpoint")


def test_speed_bench_times_what_score_runs_by_default(run_cli, tmp_path):
    """The bundled student on the CPU: the runtime `dpiqa score` picks (OpenVINO where installed), both in the
    model-only and the end-to-end measurement; `--runtime torch` still times the torch runner."""
    import json

    from dpiqa_cli.scoring.openvino_runner import openvino_version

    args = ["bench", "--speed", "--speed-models", "student", "--speed-batch-sizes", "1", "--images", "2",
            "--naive-images", "0", "--rounds", "1", "--min-time", "0.1", "--draft-images", "0", "--device", "cpu"]
    for runtime, expected in (("auto", "openvino" if openvino_version() else "onnxruntime"), ("torch", "torch")):
        code, out, err = run_cli(*args, "--runtime", runtime, "--out", tmp_path / runtime)
        assert code == 0, err
        rows = json.loads((tmp_path / runtime / "speed.json").read_text())["results"]
        assert [r["runtime"] for r in rows] == [expected] and rows[0]["e2e_img_s"] > 0 and "scoring speed" in out
