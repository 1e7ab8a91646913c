"""The repository's own tools: the examples they make, the reports CI checks."""
from __future__ import annotations

import numpy as np
from PIL import Image
from scoring_fixtures import ROOT


def test_make_examples_remakes_the_committed_examples(tmp_path):
    from tools.make_examples import EXAMPLES, make_examples

    paths = make_examples(tmp_path)
    assert sorted(p.name for p in paths) == sorted(EXAMPLES) == sorted(p.name for p in (ROOT / "examples").glob("*.jpg"))
    for p in paths:  # the same photos (JPEG bytes may differ between libjpeg builds, pixels barely)
        with Image.open(p) as a, Image.open(ROOT / "examples" / p.name) as b:
            assert a.size == b.size and a.mode == b.mode
            assert np.abs(np.asarray(a, float) - np.asarray(b, float)).mean() < 1.0, p.name
    assert (tmp_path / "LICENSES.md").read_text() == (ROOT / "examples" / "LICENSES.md").read_text()


def test_gpu_measure_smoke_runs_every_code_path_on_the_cpu(tmp_path):
    """tools/gpu/measure.py runs on a CUDA machine rarely; --smoke keeps its code paths working in between."""
    import json
    import subprocess
    import sys

    out = tmp_path / "smoke.json"
    r = subprocess.run([sys.executable, "-m", "tools.gpu.measure", "--smoke", "--out", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(out.read_text())
    assert {"agreement", "train", "inference"} <= set(result) and result["device"] == "cpu (smoke)"
    assert all("step_s" in row for row in result["train"]) and all("images_per_s" in row for row in result["inference"])
