"""distill's fine-tuning options on the training fixture: frozen blocks, head lr, no test part, same-reference
batches, crop jitter, kept epochs, weight moving average and data order."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from PIL import Image
from train_fixtures import blur_csv, short_run  # noqa: F401  (blur_csv: a fixture)


def test_small_data_options_freeze_head_lr_no_test_part(blur_csv, tmp_path, run_cli):
    """--freeze-blocks keeps the stem and first blocks (BatchNorm statistics too) exactly as initialised,
    --head-lr puts the head in its own Adam group, and --test-frac 0 trains without a test part."""
    from accelerate.utils import set_seed
    from safetensors.torch import load_file

    from dpiqa_cli.models.registry import get_spec

    run = tmp_path / "run"
    code, _, err = run_cli("-q", "distill", "--no-teacher", "-m", "tiny-student", "--dataset", "csv", "--root",
                           blur_csv, "--freeze-blocks", "1", "--head-lr", "1e-4", "--lr", "1e-2", "--test-frac", "0",
                           "--epochs", "1", "--max-steps", "3", "--batch-size", "8", "--out", run)
    assert code == 0, err
    set_seed(0)  # distill's --seed: the same initial weights
    init = {f"backbone.{k}": v for k, v in get_spec("tiny-student").build().backbone.state_dict().items()}
    last = load_file(run / "last.safetensors")
    frozen = [k for k in init if k.startswith(("backbone.conv_stem.", "backbone.bn1.", "backbone.blocks.0."))]
    trained = [k for k in init if k.startswith("backbone.blocks.1.") and k.endswith("weight")]
    assert frozen and trained
    assert all(torch.equal(last[k].float(), init[k].float()) for k in frozen)  # running stats included
    assert any(not torch.equal(last[k].float(), init[k].float()) for k in trained)
    split = json.loads((run / "split.json").read_text())
    assert split["test"] == [] and split["train"] and split["val"]
    assert not (run / "test").exists()
    assert json.loads((run / "last.json").read_text())["freeze_blocks"] == 1


def test_param_groups_and_start_at():
    from dpiqa_cli.models.registry import get_spec
    from dpiqa_cli.train.loop import param_groups

    model = get_spec("tiny-student").build()
    model.freeze_blocks(1)
    trainable = [p for p in model.parameters() if p.requires_grad]
    (one,) = param_groups(model, 1e-3, None)
    assert [id(p) for p in one["params"]] == [id(p) for p in trainable]  # the paper's single group, in order
    body, head = param_groups(model, 1e-3, 1e-5)
    head_ids = {id(p) for m in (model.regressor, model.conv_transpose) for p in m.parameters()}
    assert {id(p) for p in head["params"]} == head_ids and head["lr"] == 1e-5
    assert not {id(p) for p in body["params"]} & head_ids and len(body["params"]) + len(head_ids) == len(trainable)

    model.regressor.start_at(0.7)
    x = torch.rand(3, 3, 64, 64)
    score, _ = model(x)
    assert torch.allclose(score, torch.full_like(score, 0.7))
    ((score - torch.tensor([[0.1], [0.5], [0.9]])) ** 2).mean().backward()
    assert model.regressor.fc3.weight.grad.abs().sum() > 0  # it can leave the constant


def test_ref_runs_batches_hold_runs_of_one_reference():
    """--ref-runs: every item exactly once per epoch, in runs of one reference; seeded; DDP ranks disjoint."""
    from dpiqa_cli.train.data import epoch_batches

    groups = [f"ref{i % 5}" for i in range(43)]  # 5 references, uneven sizes
    one = epoch_batches(43, 8, seed=3, epoch=1, groups=groups, run=4)
    flat = [i for b in one for i in b]
    assert sorted(flat) == list(range(43)) and all(len(b) <= 8 for b in one)
    runs, k = [], 0
    while k < len(flat):  # consecutive items of one reference form runs of at most 4
        j = k
        while j < len(flat) and groups[flat[j]] == groups[flat[k]] and j - k < 4:
            j += 1
        runs.append(j - k)
        k = j
    assert sum(r == 4 for r in runs) >= 43 // 4 - 5  # at most one short run per reference
    assert one == epoch_batches(43, 8, seed=3, epoch=1, groups=groups, run=4)
    assert one != epoch_batches(43, 8, seed=3, epoch=2, groups=groups, run=4)
    assert epoch_batches(43, 8, 3, 1) == epoch_batches(43, 8, 3, 1, groups=groups, run=0)  # off: the paper's order
    r0, r1 = (epoch_batches(43, 8, 3, 1, rank, 2, groups=groups, run=4) for rank in (0, 1))
    assert len(r0) == len(r1) and not {i for b in r0 for i in b} & {i for b in r1 for i in b}


def test_ref_runs_trains_and_is_refused_without_references(blur_csv, tmp_path, run_cli):
    assert short_run(run_cli, blur_csv, tmp_path / "run", "--ref-runs", "4")["ref_runs"] == 4
    no_refs = tmp_path / "norefs"
    no_refs.mkdir()
    df = pd.read_csv(blur_csv / "synth.csv")
    df["path"] = [str((blur_csv / p).resolve()) for p in df["path"]]
    df[["path", "mos"]].to_csv(no_refs / "mos.csv", index=False)
    code, _, err = run_cli("-q", "distill", "--no-teacher", "-m", "tiny-student", "--dataset", "csv", "--root",
                           no_refs, "--ref-runs", "4", "--epochs", "1", "--out", tmp_path / "r2")
    assert code == 2 and "--ref-runs needs a reference image" in err and "Traceback" not in err


def test_crop_jitter_crops_before_the_resize_seeded_and_training_only(tmp_path, run_cli, blur_csv):
    """--crop-jitter: a training item is a random box of the image (each side j..1 of it) resized to S x S,
    the same box for the same (seed, epoch, item); off, or outside training, the whole image is resized."""
    from dpiqa_cli.data.views import View
    from dpiqa_cli.train.data import TableDataset

    # a 200 x 100 image whose pixel value encodes its column: the crop's column range is readable
    cols = np.tile(np.linspace(0, 255, 200).round().astype(np.uint8), (100, 1))
    path = tmp_path / "ramp.png"
    Image.fromarray(np.stack([cols] * 3, -1)).save(path)
    plain = TableDataset([str(path)], [0.5], View("whole", 32), train=True, seed=1)
    jit = TableDataset([str(path)], [0.5], View("whole", 32), train=True, seed=1, crop_jitter=0.5)
    spans = []
    for epoch in range(8):
        for ds in (plain, jit):
            ds.set_epoch(epoch)
        x = jit[0]["x"]
        assert x.shape == (3, 32, 32) and torch.equal(x, jit[0]["x"])  # seeded per (epoch, item)
        row = x[0, 16] * 255
        spans.append(float(row.max() - row.min()))
        full = plain[0]["x"][0, 16] * 255
        assert float(full.max() - full.min()) > 240  # no jitter: all 200 columns, flipped or not
    assert 0.5 * 255 - 20 <= min(spans) < 230 and len({round(s) for s in spans}) > 4  # j..1 of the columns
    val = TableDataset([str(path)], [0.5], View("whole", 32), train=False, crop_jitter=0.5)
    assert torch.equal(val[0]["x"], TableDataset([str(path)], [0.5], View("whole", 32))[0]["x"])  # not when not training
    code, _, err = run_cli("-q", "distill", "--no-teacher", "-m", "tiny-student", "--dataset", "csv", "--root",
                           blur_csv, "--crop-jitter", "1.5", "--out", tmp_path / "bad")
    assert code == 2 and err.count("\n") == 1 and "--crop-jitter" in err
    assert short_run(run_cli, blur_csv, tmp_path / "run", "--crop-jitter", "0.6")["crop_jitter"] == 0.6


def test_keep_epochs_keeps_each_epochs_weights(tmp_path, run_cli, blur_csv):
    """--keep-epochs: RUN/epoch-N.safetensors after every finished epoch, the last one equal to last.safetensors;
    a run stopped mid-epoch by --max-steps keeps no file for the unfinished epoch."""
    from safetensors.torch import load_file

    run = tmp_path / "run"
    code, _, err = run_cli("-q", "distill", "--no-teacher", "-m", "tiny-student", "--dataset", "csv", "--root",
                           blur_csv, "--epochs", "2", "--batch-size", "32", "--keep-epochs", "--out", run)
    assert code == 0, err
    assert sorted(p.name for p in run.glob("epoch-*.safetensors")) == ["epoch-1.safetensors", "epoch-2.safetensors"]
    first, second, last = (load_file(run / n) for n in ("epoch-1.safetensors", "epoch-2.safetensors", "last.safetensors"))
    assert all(torch.equal(second[k], last[k]) for k in last)
    assert any(not torch.equal(first[k], second[k]) for k in first)  # epoch 2 trained on
    assert json.loads((run / "epoch-1.json").read_text())["epoch"] == 1
    cut = tmp_path / "cut"
    short_run(run_cli, blur_csv, cut, "--keep-epochs")
    assert not list(cut.glob("epoch-*"))


def test_ema_keeps_an_average_without_changing_training_and_resumes_exactly(blur_csv, tmp_path, run_cli):
    """--ema: the run's own weights are those of a run without it; RUN/ema.safetensors is the average
    ema = d * ema + (1 - d) * w over the steps, and an interrupted run resumes it bit for bit."""
    from safetensors.torch import load_file

    args = ["-q", "distill", "--no-teacher", "-m", "tiny-student", "--dataset", "csv", "--root", blur_csv,
            "--epochs", "2", "--batch-size", "16", "--lr", "1e-3", "--keep-epochs"]
    assert run_cli(*args, "--out", tmp_path / "plain")[0] == 0
    assert run_cli(*args, "--out", tmp_path / "ema", "--ema", "0.9")[0] == 0
    plain, last = load_file(tmp_path / "plain" / "last.safetensors"), load_file(tmp_path / "ema" / "last.safetensors")
    assert all(torch.equal(plain[k], last[k]) for k in plain)
    assert not list((tmp_path / "plain").glob("*ema*"))
    names = sorted(p.name for p in (tmp_path / "ema").glob("*ema.safetensors"))
    assert names == ["ema.safetensors", "epoch-1-ema.safetensors", "epoch-2-ema.safetensors"]
    ema = load_file(tmp_path / "ema" / "ema.safetensors")
    moved = [k for k in ema if ema[k].is_floating_point() and not torch.equal(ema[k], last[k])]
    assert moved  # an average of the iterates, not the last one
    assert json.loads((tmp_path / "ema" / "ema.json").read_text())["ema_decay"] == 0.9
    assert run_cli(*args, "--out", tmp_path / "part", "--ema", "0.9", "--max-steps", "5")[0] == 0
    code, _, err = run_cli(*args, "--out", tmp_path / "part", "--ema", "0.9", "--resume")
    assert code == 0, err
    resumed = load_file(tmp_path / "part" / "ema.safetensors")
    assert all(torch.equal(ema[k], resumed[k]) for k in ema)
    code, _, err = run_cli(*args, "--out", tmp_path / "bad", "--ema", "1")
    assert code == 2 and err.count("\n") == 1 and "--ema" in err


def test_weight_ema_averages_weights_and_float_buffers_and_copies_counters():
    from dpiqa_cli.train.ema import WeightEma

    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 1))
    net[0].requires_grad_(False)
    ema = WeightEma(net, 0.75)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad:  # a frozen layer stays, and so does its average
                p.add_(1.0)
    net.train()(torch.randn(8, 3))  # BatchNorm statistics move
    ema.update(net)
    now, avg = net.state_dict(), ema.model.state_dict()
    assert torch.equal(avg["0.weight"], start["0.weight"])
    for k in ("2.weight", "1.running_mean", "1.running_var"):
        assert torch.allclose(avg[k], 0.75 * start[k] + 0.25 * now[k]), k
    assert avg["1.num_batches_tracked"] == now["1.num_batches_tracked"] == 1
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_data_seed_changes_the_data_order_and_not_the_initial_weights(blur_csv, tmp_path, run_cli):
    """--data-seed: the batches follow it and the initial weights follow --seed; by default it is --seed."""
    from safetensors.torch import load_file

    def weights(name: str, *opts) -> dict:
        short_run(run_cli, blur_csv, tmp_path / name, *opts)
        w = load_file(tmp_path / name / "last.safetensors")
        return {k: v for k, v in w.items() if "running_" not in k and "num_batches" not in k}  # BN statistics

    def same(a: dict, b: dict, atol: float = 0.0) -> bool:
        return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=0, atol=atol) for k in a)

    frozen = ["--lr", "1e-30", "--head-lr", "1e-30"]  # two Adam steps move a weight by at most 2e-30
    start = weights("start", *frozen)
    assert same(start, weights("start-data-1", *frozen, "--data-seed", "1"), atol=1e-20)
    assert not same(start, weights("start-seed-1", *frozen, "--seed", "1", "--data-seed", "0"), atol=1e-20)
    trained = weights("trained", "--lr", "1e-3")
    assert same(trained, weights("trained-data-0", "--lr", "1e-3", "--data-seed", "0"))
    assert not same(trained, weights("trained-data-1", "--lr", "1e-3", "--data-seed", "1"))
    assert json.loads((tmp_path / "trained-data-1" / "last.json").read_text())["train_config"]["data_seed"] == 1
    base = ["-q", "distill", "--no-teacher", "-m", "tiny-student", "--dataset", "csv", "--root", blur_csv]
    code, _, err = run_cli(*base, "--protocol", "--data-seed", "1", "--out", tmp_path / "p")
    assert code == 2 and err.count("\n") == 1 and "--data-seed" in err, err
    code, _, err = run_cli(*base, "--data-seed", "one", "--out", tmp_path / "q")
    assert code == 2 and "--data-seed" in err, err
