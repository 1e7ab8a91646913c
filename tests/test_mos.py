"""MOS files and labels: DMOS the right way up (by column name, the catalog winning for KADID), the same numbers
from `bench --dataset csv` and `score --mos`, linear matching at 100k rows, and an error when nothing could be
evaluated."""
import json
import time

import numpy as np
import pandas as pd
import pytest

from dpiqa_cli.evaluate.metrics import KEYS


def _scores_file(tmp_path, names, score):
    pd.DataFrame({"rank": range(1, len(names) + 1), "path": [str(tmp_path / n) for n in names], "score": score,
                  "width": 8, "height": 8}).to_csv(tmp_path / "scores.csv", index=False)
    return tmp_path / "scores.csv"


def _report(d):
    doc = json.loads((d / "report.json").read_text())
    return doc["splits"][0]["metrics"], (d / "report.md").read_text()


def test_direction_by_column_name_and_catalog():
    from dpiqa_cli.data.labels import direction

    assert direction("dmos") == (True, "column name 'dmos' (DMOS)")
    assert direction("MOS")[0] is False
    assert direction("dmos", dataset="kadid") == (False, "the kadid catalog entry")  # KADID's dmos: higher better
    assert direction("mos", dataset="live")[0] is True
    assert direction("dmos", lower_better=False)[0] is False


def test_a_dmos_file_gives_a_positive_srcc_for_a_model_that_ranks_correctly(tmp_path, run_cli):
    rng = np.random.default_rng(0)
    names = [f"img{i}.jpg" for i in range(30)]
    quality = rng.uniform(0, 1, 30)
    scores = _scores_file(tmp_path, names, quality + rng.normal(0, 0.05, 30))
    pd.DataFrame({"image_name": names, "dmos": 100 * (1 - quality)}).to_csv(tmp_path / "dmos.csv", index=False)
    code, _, err = run_cli("bench", "--scores", scores, "--mos", tmp_path / "dmos.csv", "--out", tmp_path / "r")
    assert code == 0, err
    m, md = _report(tmp_path / "r")
    assert m["srcc"] > 0.9 and m["plcc"] > 0.9 and m["plcc_logistic"] > 0.9
    assert "lower-is-better (column name 'dmos' (DMOS)): flipped" in md
    # the generic csv dataset reads a dmos column the same way
    pd.DataFrame({"path": names, "dmos": 100 * (1 - quality)}).to_csv(tmp_path / "labels.csv", index=False)
    for n in names:
        (tmp_path / n).write_bytes(b"")
    code, _, err = run_cli("bench", "--dataset", "csv", "--root", tmp_path / "labels.csv", "--scores", scores,
                           "--split", "all", "--out", tmp_path / "d")
    assert code == 0, err
    assert _report(tmp_path / "d")[0]["srcc"] == pytest.approx(m["srcc"], abs=1e-12)


def test_kadids_dmos_file_is_read_as_higher_is_better(tmp_path, run_cli):
    rng = np.random.default_rng(1)
    names = [f"I{i // 5 + 1:02d}_01_{i % 5 + 1:02d}.png" for i in range(30)]
    dmos = rng.uniform(1, 5, 30)  # KADID-10k's dmos: 1-5, higher is better
    scores = _scores_file(tmp_path, names, (dmos - 1) / 4 + rng.normal(0, 0.05, 30))
    pd.DataFrame({"dist_img": names, "ref_img": [n[:3] + ".png" for n in names], "dmos": dmos, "var": 0.1}).to_csv(
        tmp_path / "dmos.csv", index=False)
    code, _, err = run_cli("bench", "--scores", scores, "--mos", tmp_path / "dmos.csv", "--out", tmp_path / "r")
    assert code == 0, err
    m, md = _report(tmp_path / "r")
    assert m["srcc"] > 0.9 and "higher-is-better (the kadid catalog entry)" in md


def test_score_mos_and_bench_csv_report_the_same_numbers(tmp_path, run_cli):
    from scoring_fixtures import write_photos

    files = write_photos(tmp_path / "photos")
    mos = np.round(np.linspace(1.2, 4.8, len(files))[np.random.default_rng(2).permutation(len(files))], 3)
    labels = tmp_path / "photos" / "labels.csv"
    pd.DataFrame({"path": [p.name for p in files], "mos": mos}).to_csv(labels, index=False)  # a 1-5 MOS file
    code, _, err = run_cli("score", tmp_path / "photos", "-m", "tiny-student", "--device", "cpu", "-j", "0",
                           "-o", tmp_path / "s.csv", "--mos", labels)
    assert code == 0, err
    code, _, err = run_cli("bench", "-m", "tiny-student", "--dataset", "csv", "--root", labels, "--split", "all",
                           "--out", tmp_path / "b", "--device", "cpu", "-j", "0")
    assert code == 0, err
    (a, md_a), (b, md_b) = _report(tmp_path / "s.report"), _report(tmp_path / "b")
    for k in KEYS + ("n",):
        assert a[k] == pytest.approx(b[k], abs=1e-9), k
    assert 0 <= a["rmse"] <= 0.5  # on the [0, 1] scale, not 1-5
    assert np.sign(a["plcc_logistic"]) == np.sign(a["plcc"])  # the logistic keeps the relation's sign
    assert "RMSE: between f(pred) and the MOS normalised to [0, 1]" in md_a and md_b


def test_a_dataset_too_small_to_evaluate_is_an_error(tmp_path, run_cli):
    from scoring_fixtures import write_photos

    files = write_photos(tmp_path / "photos")[:10]
    pd.DataFrame({"path": [p.name for p in files], "mos": range(10)}).to_csv(tmp_path / "photos/l.csv", index=False)
    code, _, err = run_cli("--quiet", "bench", "-m", "tiny-student", "--dataset", "csv", "--root",
                           tmp_path / "photos/l.csv", "--out", tmp_path / "b", "--device", "cpu", "-j", "0")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: no split could be evaluated: seed 0: only 2 samples, need at least 3")
    assert (tmp_path / "b/report.md").exists()  # the report still says what was tried


def test_matching_100k_rows_is_linear(tmp_path):
    from dpiqa_cli.evaluate.mos import match, read_mos

    n = 100_000
    names = [f"d{i % 100}/img{i:06d}.jpg" for i in range(n)]
    pd.DataFrame({"image_name": names, "MOS": np.random.default_rng(0).uniform(1, 5, n)}).to_csv(
        tmp_path / "mos.csv", index=False)
    scores = pd.DataFrame({"path": [str(tmp_path / x) for x in names], "score": np.linspace(0, 1, n)})
    t0 = time.perf_counter()
    joined = match(scores, read_mos(tmp_path / "mos.csv"), tmp_path)
    assert time.perf_counter() - t0 < 2.0  # quadratic matching took minutes here
    assert len(joined) == n and joined["score"].tolist() == scores["score"].tolist()
