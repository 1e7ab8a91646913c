"""A checkpoint's score calibration: a strictly increasing map into (0, 1), applied on every runtime."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.scoring.runner import calibrate


def test_the_logistic_keeps_order_and_never_leaves_the_unit_interval():
    s = np.array([-1e6, -3.0, 0.2, 0.2000001, 0.9, 1.07, 5.0, 1e6])
    out = calibrate(s, {"kind": "logistic", "a": 8.0, "b": -4.0})
    assert ((out >= 0) & (out <= 1)).all() and np.all(np.diff(out) >= 0)
    assert np.all(np.diff(out[1:-1]) > 0)  # strictly increasing where floats can tell: no ties made
    assert out[3] == pytest.approx(1 / (1 + np.exp(-(8 * 0.2000001 - 4))))
    assert calibrate(s, None) is s
    for bad in ({"kind": "isotonic"}, {"kind": "logistic", "a": -1.0, "b": 0.0}):
        with pytest.raises(DpiqaError):
            calibrate(s, bad)


@pytest.mark.parametrize("runtime", ["torch", "onnx", "openvino"])
def test_every_runtime_applies_the_checkpoints_calibration(tmp_path, run_cli, runtime):
    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint

    net = load_model("tiny-student").model.eval()
    img = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(3).random((90, 120, 3)) * 255).astype(np.uint8)).save(img)
    scores = {}
    for name, cal in (("raw", None), ("cal", {"kind": "logistic", "a": 40.0, "b": 3.0})):
        ckpt = save_checkpoint(net, tmp_path / f"{name}.safetensors", spec_name="tiny-student",
                               info={"view": {"name": "whole"}, "calibration": cal})
        code, out, err = run_cli("score", img, "-w", ckpt, "-j", "0", "-q", "--runtime", runtime)
        assert code == 0, err
        scores[name] = float(out.splitlines()[1].split(",")[2])
    assert scores["cal"] == pytest.approx(1 / (1 + np.exp(-(40 * scores["raw"] + 3))), abs=1e-5)
    assert 0 < scores["cal"] < 1


@pytest.mark.parametrize("runtime", ["torch", "onnx", "openvino"])
def test_the_bundled_models_scores_stay_in_the_unit_interval(tmp_path, run_cli, runtime):
    """Every example and every decodable fixture of the bad-input zoo, on every runtime: scores in [0, 1]."""
    import pandas as pd
    from scoring_fixtures import ROOT
    from test_bad_inputs import build_zoo

    zoo = build_zoo(tmp_path)
    files = sorted((ROOT / "examples").glob("*.jpg")) + [tmp_path / n for n, why in zoo.items() if why is None]
    code, _, err = run_cli("score", *files, "-j", "0", "-q", "--runtime", runtime, "-o", tmp_path / "s.csv")
    assert code == 0, err
    scores = pd.read_csv(tmp_path / "s.csv")["score"]
    assert len(scores) == len(files) and scores.between(0.0, 1.0).all(), scores.describe()
