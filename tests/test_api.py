"""The Python API: `create_scorer(...)(img)` gives `dpiqa score`'s scores for every kind of input."""
from __future__ import annotations

import io
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scoring_fixtures import PY, cli_env

from dpiqa_cli import create_scorer
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.resolve import resolve_model

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*.jpg"))


def _cli_scores(run_cli, *args) -> dict:
    """{path: score as the CSV writes it} of `dpiqa score examples/ ARGS`."""
    code, out, err = run_cli("score", ROOT / "examples", "--device", "cpu", "-q", *args)
    assert code == 0, err
    table = pd.read_csv(io.StringIO(out), dtype={"score": str})
    return dict(zip(table["path"], table["score"]))


def _csv(x: float) -> str:
    """A score as the CSV writes it."""
    return pd.DataFrame({"s": [x]}).to_csv(index=False, float_format="%.6g").splitlines()[1]


@pytest.fixture(scope="module")
def torch_scorer():
    return create_scorer("student", runtime="torch", device="cpu")


def _as(kind: str, path: str):
    if kind == "path":
        return path
    img = Image.open(path)
    if kind == "pil":
        return img
    arr = np.asarray(img.convert("RGB"))
    return arr if kind == "array" else torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255.0


@pytest.mark.parametrize("kind", ["path", "pil", "array", "tensor"])
def test_every_input_kind_scores_as_the_cli_bit_for_bit(torch_scorer, run_cli, kind):
    from dpiqa_cli.scoring.pipeline import score_paths

    cli = _cli_scores(run_cli, "--runtime", "torch")
    full = score_paths(EXAMPLES, model="student", runtime="torch", device="cpu", workers=0, progress=False)
    full = dict(zip(full["path"], full["score"]))
    for p in EXAMPLES:
        got = torch_scorer(_as(kind, p))
        assert isinstance(got, float)
        assert _csv(got) == cli[p], (kind, p)
        assert got == full[p], (kind, p)  # every bit, not only the CSV's 6 digits


def test_the_default_runtime_matches_the_default_cli(run_cli):
    scorer = create_scorer()  # the bundled model on the CPU runtime, as `dpiqa score` runs it by default
    cli = _cli_scores(run_cli)
    assert scorer.runtime != "torch"
    assert [_csv(s) for s in scorer(EXAMPLES)] == [cli[p] for p in EXAMPLES]
    assert _csv(scorer(Image.open(EXAMPLES[0]))) == cli[EXAMPLES[0]]


def test_a_list_gives_a_list_of_the_single_scores(torch_scorer):
    singles = [torch_scorer(p) for p in EXAMPLES]
    mixed = [EXAMPLES[0], Image.open(EXAMPLES[1]), np.asarray(Image.open(EXAMPLES[2]).convert("RGB"))]
    assert torch_scorer(EXAMPLES) == singles and torch_scorer(tuple(EXAMPLES)) == singles
    assert torch_scorer(mixed) == singles[:3]
    assert torch_scorer(list(reversed(EXAMPLES))) == singles[::-1]  # batch mates change nothing
    assert torch_scorer([]) == []


def test_attributes_name_the_model_its_view_and_its_scale(torch_scorer, tmp_path):
    from core_fixtures import tiny_checkpoint

    bundled = resolve_model("student")
    assert torch_scorer.model_name == "student" and torch_scorer.view == bundled.view
    assert torch_scorer.view.name == "multiscale"  # the crops `dpiqa score` cuts, not a plain resize
    assert torch_scorer.lower_better is False and torch_scorer.score_range == (0.0, 1.0)
    tiny = create_scorer("tiny-student", device="cpu")
    assert tiny.score_range == (-math.inf, math.inf)  # random weights: no scale to promise
    ckpt = tiny_checkpoint(tmp_path)
    own = create_scorer(str(ckpt), runtime="torch", device="cpu")
    assert own.model_name == str(ckpt) and own.score_range == (0.0, 1.0) and own.view.size == 64
    assert own(EXAMPLES[0]) == tiny(EXAMPLES[0])  # the same random weights, saved


@pytest.mark.parametrize("bad, words", [
    ("/no/such/photo.jpg", "no such file"),
    (np.zeros((64, 64, 3), np.float32), "uint8 H x W x 3"),
    (np.zeros((64, 64), np.uint8), "uint8 H x W x 3"),
    (torch.full((3, 64, 64), 2.0), "values in [0, 1]"),
    (torch.zeros((64, 64, 3)), "float 3 x H x W"),
    (np.zeros((4, 4, 3), np.uint8), "too small"),
    (42, "expected a path, a PIL image"),
])
def test_bad_input_is_one_line_dpiqa_error(torch_scorer, bad, words):
    with pytest.raises(DpiqaError) as exc:
        torch_scorer(bad)
    assert words in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(DpiqaError, match="image 1" if not isinstance(bad, str) else "photo.jpg"):
        torch_scorer([EXAMPLES[0], bad])  # a list names the item that failed


def test_a_truncated_file_is_named_in_the_error(torch_scorer, tmp_path):
    data = Path(EXAMPLES[0]).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(DpiqaError, match="cut.jpg: truncated"):
        torch_scorer(str(tmp_path / "cut.jpg"))


def test_importing_the_package_stays_cheap():
    code = ("import sys, dpiqa_cli; assert callable(dpiqa_cli.create_scorer); "
            "print(sorted(m for m in ('numpy', 'torch', 'PIL', 'dpiqa_cli.api') if m in sys.modules))")
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
