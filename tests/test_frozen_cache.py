"""distill --cache-frozen: the frozen part's features, computed once, give the same model as a live run."""
from __future__ import annotations

import json

import numpy as np
import torch
from safetensors.torch import load_file
from train_fixtures import blur_csv, short_run  # noqa: F401  (a pytest fixture)
from usage_checks import usage_error


def test_the_top_of_a_student_on_cached_features_is_the_whole_student():
    from dpiqa_cli.models.registry import get_spec
    from dpiqa_cli.train.frozen_cache import frozen_part

    net = get_spec("tiny-student").build().eval()
    x = torch.rand(3, 3, 64, 64)
    net.freeze_blocks(2)
    with torch.no_grad():
        whole = net(x)[0]
        feats = frozen_part(net, x)
        net.input_block = 2
        top = net(feats)[0]
    torch.testing.assert_close(top, whole, rtol=0, atol=1e-6)


def test_a_cached_run_uses_the_frozen_parts_own_features_and_shares_them(blur_csv, tmp_path, run_cli):  # noqa: F811
    """The cache holds the frozen part's output for each item's fixed crop; the frozen weights never move, the
    others do; a run of another data order reuses the cache; the usage mistakes are one line."""
    from dpiqa_cli.data.views import view_from_config
    from dpiqa_cli.models.checkpoint import load_checkpoint
    from dpiqa_cli.train.data import TableDataset
    from dpiqa_cli.train.frozen_cache import frozen_part

    opts = ["--freeze-blocks", "2", "--cache-frozen", "--frozen-cache", str(tmp_path / "cache"), "--lr", "1e-3"]
    assert short_run(run_cli, blur_csv, tmp_path / "a", *opts)["cache_frozen"] is True
    files = sorted((tmp_path / "cache").glob("*.npy"))
    assert sorted(f.name.split("-")[0] for f in files) == ["train", "val"]
    stamps = {f: f.stat().st_mtime_ns for f in files}
    short_run(run_cli, blur_csv, tmp_path / "b", *opts, "--data-seed", "1")
    assert {f: f.stat().st_mtime_ns for f in sorted((tmp_path / "cache").glob("*.npy"))} == stamps  # reused
    import pandas as pd

    table = pd.read_csv(blur_csv / "synth.csv")
    table[table.level != 2].to_csv(blur_csv / "fewer.csv", index=False)  # the same references, fewer images
    short_run(run_cli, blur_csv / "fewer.csv", tmp_path / "c", *opts)
    assert {f: f.stat().st_mtime_ns for f in sorted((tmp_path / "cache").glob("*.npy"))} == stamps  # rows of it
    (blur_csv / "fewer.csv").unlink()

    wa, wb = (load_file(tmp_path / r / "last.safetensors") for r in ("a", "b"))
    frozen = ("backbone.conv_stem", "backbone.bn1", "backbone.blocks.0.", "backbone.blocks.1.")
    assert all(torch.equal(wa[k], wb[k]) for k in wa if k.startswith(frozen))
    assert not all(torch.equal(wa[k], wb[k]) for k in wa if not k.startswith(frozen))  # another data order

    net, config = load_checkpoint(tmp_path / "a" / "last.safetensors")
    assert config["cached_frozen_blocks"] == 2
    net.freeze_blocks(2)
    net.eval()
    ids = json.loads((tmp_path / "a" / "split.json").read_text())["train"][:3]  # the cache's first images
    mos = dict(zip(*pd.read_csv(blur_csv / "synth.csv")[["path", "mos"]].T.values))
    ds = TableDataset([str(blur_csv / i) for i in ids], [mos[i] for i in ids], view_from_config(config, 64))
    x = torch.stack([ds[i]["x"] for i in range(len(ds))])  # their fixed crops, unflipped
    cached = np.load(next(f for f in files if f.name.startswith("train")), mmap_mode="r")
    np.testing.assert_allclose(cached[:len(ds)].astype(np.float32), frozen_part(net, x).numpy(), atol=1e-2, rtol=1e-2)

    base = ["-q", "distill", "-m", "tiny-student", "--dataset", "csv", "--root", blur_csv, "--cache-frozen"]
    for extra in (["--no-teacher"], ["--no-teacher", "--freeze-blocks", "2", "--crop-jitter", "0.5"]):
        code, _, err = run_cli(*base, *extra, "--out", tmp_path / "bad")
        usage_error(code, err, "--cache-frozen")
