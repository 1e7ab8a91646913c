"""Under torchrun (gloo, 2 processes) every rank scores a shard and rank 0 writes the same CSV."""
from __future__ import annotations

import subprocess

import numpy as np
from PIL import Image
from scoring_fixtures import PY, ROOT, cli_env, run_cli


def test_torchrun_two_ranks_same_csv(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(11):  # odd: the shards differ in size
        Image.fromarray((rng.random((40, 56, 3)) * 255).astype(np.uint8)).save(d / f"p{i}.png")
    (d / "bad.jpg").write_text("nope")
    single = tmp_path / "single.csv"
    r = run_cli("score", d, "-m", "tiny-student", "--device", "cpu", "-j", "0", "-b", "2", "-o", single)
    assert r.returncode == 1, r.stderr
    multi = tmp_path / "multi.csv"
    cmd = [PY, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--standalone", "-m", "dpiqa_cli", "score", str(d), "-m", "tiny-student", "--device", "cpu",
           "-j", "0", "-b", "2", "-q", "-o", str(multi)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), timeout=300, cwd=ROOT)
    assert r.returncode == 1, r.stderr[-3000:]
    assert multi.read_text() == single.read_text()
    assert (tmp_path / "multi.errors.csv").read_text() == (tmp_path / "single.errors.csv").read_text()
    assert not list(tmp_path.glob("*.partial.*"))
