"""`dpiqa score` on real photos: every file, ranked, reproducible across runs and worker counts."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scoring_fixtures import write_photos

from dpiqa_cli.data.discover import discover
from dpiqa_cli.data.images import decode_uint8
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.device import resolve_device, resolve_precision



@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    return folder, write_photos(folder)


def test_csv_has_every_file_ranked(photos, run_cli, tmp_path):
    folder, files = photos
    out = tmp_path / "scores.csv"
    code, _, err = run_cli("score", folder, "-m", "tiny-student", "--device", "cpu", "--workers", "0", "-o", out)
    assert code == 0, err
    assert "scored 20, failed 0" in err
    assert "processed 20/20 (0 failed)" in err  # stderr is not a terminal here: plain progress lines
    df = pd.read_csv(out)
    assert list(df.columns) == ["rank", "path", "score", "width", "height"]
    assert sorted(df["path"]) == sorted(str(p) for p in files)
    assert list(df["rank"]) == list(range(1, len(files) + 1))
    assert (np.diff(df["score"].to_numpy()) <= 0).all(), "best first"
    sizes = {str(p): Image.open(p).size for p in files}
    assert all(sizes[p] == (w, h) for p, w, h in zip(df["path"], df["width"], df["height"]))
    assert not (tmp_path / "scores.partial.csv").exists() and not (tmp_path / "scores.errors.csv").exists()


def test_identical_across_runs_and_workers(photos, run_cli, tmp_path):
    folder, _ = photos
    texts = []
    for i, workers in enumerate(["0", "0", "2"]):
        out = tmp_path / f"run{i}.csv"
        code, _, err = run_cli("score", folder, "-m", "tiny-student", "--device", "cpu", "--workers", workers,
                               "-b", "3", "-o", out)
        assert code == 0, err
        texts.append(out.read_text())
    assert texts[0] == texts[1] == texts[2]


def test_jsonl_stdout_and_parquet(photos, run_cli, tmp_path):
    folder, files = photos
    code, _, err = run_cli("score", folder, "-m", "tiny-student", "--device", "cpu", "-j", "0", "-o", tmp_path / "s.jsonl")
    assert code == 0, err
    df = pd.read_json(tmp_path / "s.jsonl", lines=True)
    assert len(df) == len(files) and df["rank"].iloc[0] == 1
    code, out, _ = run_cli("score", files[0], files[1], "-m", "tiny-student", "--device", "cpu", "-j", "0", "-q")
    assert code == 0 and out.splitlines()[0] == "rank,path,score,width,height" and len(out.splitlines()) == 3
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        code, _, err = run_cli("score", folder, "-m", "tiny-student", "-o", tmp_path / "s.parquet")
        assert code == 2 and "pyarrow" in err and err.count("\n") == 1


def test_exit_codes_and_bad_args(tmp_path, run_cli):
    (tmp_path / "junk.jpg").write_text("not an image")
    code, _, err = run_cli("score", tmp_path / "junk.jpg", "-m", "tiny-student", "-j", "0")
    assert code == 4 and "not an image" in err  # nothing scored: apart from 2, a usage mistake
    code, _, err = run_cli("score", tmp_path, "-m", "tiny-student", "--precision", "fp8")
    assert code == 2 and err.startswith("error: --precision")
    code, _, err = run_cli("score", tmp_path / "empty_dir_*", "-m", "tiny-student")
    assert code == 2
    code, _, err = run_cli("score", tmp_path, "-m", "tiny-student", "-o", tmp_path / "x.txt")
    assert code == 2 and ".csv, .jsonl or .parquet" in err


def test_discovery(tmp_path):
    img = Image.new("RGB", (16, 16), "gray")
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ("top.JPG", "a/x.png", "a/b/deep.webp", "a/b/skip.txt", "a/T.TIFF"):
        p = tmp_path / rel
        img.save(p, format={"JPG": "JPEG", "TIFF": "TIFF"}.get(p.suffix[1:], p.suffix[1:].upper())) \
            if p.suffix != ".txt" else p.write_text("x")
    os.symlink(tmp_path / "a", tmp_path / "a" / "b" / "loop")  # a symlink loop
    os.symlink(tmp_path / "top.JPG", tmp_path / "zalias.jpg")  # a duplicate by target
    found = discover([tmp_path])
    names = [os.path.relpath(p, tmp_path) for p in found]
    assert names == ["top.JPG", "a/T.TIFF", "a/x.png", "a/b/deep.webp"]
    assert [os.path.relpath(p, tmp_path) for p in discover([tmp_path], recursive=False)] == ["top.JPG"]
    assert [os.path.basename(p) for p in discover([str(tmp_path / "a" / "*.png"), str(tmp_path / "a")])] == \
        ["x.png", "T.TIFF", "deep.webp"]
    lst = tmp_path / "list.txt"
    lst.write_text("# comment\na/x.png\n\ntop.JPG\na/x.png\n")
    assert [os.path.basename(p) for p in discover([], from_list=str(lst))] == ["x.png", "top.JPG"]


def test_draft_decode_close_to_full_decode(tmp_path):
    from skimage import data

    p = tmp_path / "big.jpg"
    Image.fromarray(data.astronaut()).resize((2048, 1536), Image.BICUBIC).save(p, quality=90)
    a = decode_uint8(p, 512, draft=True)[0].astype(int)
    b = decode_uint8(p, 512, draft=False)[0].astype(int)
    assert np.abs(a - b).mean() < 1.5 and np.abs(a - b).max() < 64


def test_device_and_precision_policy():
    import torch

    cpu = torch.device("cpu")
    assert resolve_device("cpu") == cpu
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("auto", torch.device("cuda", 0)) == "bf16"
    with pytest.raises(DpiqaError):
        resolve_precision("fp16", cpu)
    with pytest.raises(DpiqaError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DpiqaError, match="no CUDA"):
            resolve_device("cuda:0")


def test_mos_report(photos, run_cli, tmp_path):
    folder, files = photos
    mos = tmp_path / "mos.csv"
    pd.DataFrame({"image_name": [p.name for p in files], "MOS": np.linspace(10, 90, len(files))}).to_csv(mos, index=False)
    out = tmp_path / "s.csv"
    code, _, err = run_cli("score", folder, "-m", "tiny-student", "--device", "cpu", "-j", "0", "-o", out, "--mos", mos)
    assert code == 0, err
    report = tmp_path / "s.report"
    assert (report / "report.md").exists() and (report / "scatter.png").stat().st_size > 0
    import json

    from scipy import stats

    got = json.loads((report / "report.json").read_text())["splits"][0]["metrics"]
    scored = pd.read_csv(out)
    truth = dict(zip([str(p) for p in files], np.linspace(10, 90, len(files))))
    mos_of = scored["path"].map(truth)
    assert got["n"] == len(files)
    assert got["srcc"] == pytest.approx(stats.spearmanr(scored["score"], mos_of)[0], abs=1e-9)
    assert got["plcc"] == pytest.approx(stats.pearsonr(scored["score"], mos_of)[0], abs=1e-9)


def test_mos_column_from_checkpoint_scale(photos, run_cli, tmp_path):
    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint

    folder, files = photos
    ckpt = save_checkpoint(load_model("tiny-student").model, tmp_path / "t.safetensors", spec_name="tiny-student",
                           info={"mos_scale": {"name": "live", "min": 0.0, "max": 100.0, "lower_better": True}})
    out = tmp_path / "m.csv"
    code, _, err = run_cli("score", *files[:4], "-m", "tiny-student", "-w", ckpt, "-j", "0", "-o", out)
    assert code == 0, err
    df = pd.read_csv(out)
    assert list(df.columns) == ["rank", "path", "score", "width", "height", "mos"]
    np.testing.assert_allclose(df["mos"], 100.0 - 100.0 * df["score"])  # DMOS: lower is better


def test_from_list_stdin(photos, run_cli, tmp_path, monkeypatch):
    import io

    _, files = photos
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{files[0]}\n{files[1]}\n{files[0]}\n"))
    code, out, err = run_cli("score", "--from-list", "-", "-m", "tiny-student", "-j", "0", "-q")
    assert code == 0, err
    assert sorted(line.split(",")[1] for line in out.splitlines()[1:]) == sorted([str(files[0]), str(files[1])])


def test_patches_view_is_the_mean_of_two_crops(tmp_path, run_cli):
    """A checkpoint trained on synthetic data (two patches of a 2S x 1.5S resize) is scored the same way."""
    import torch

    from dpiqa_cli.data.views import View, decode_views
    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint

    assert View("patches", 64).layout(100, 70) == ((128, 96), [(0, 16), (64, 16)])
    net = load_model("tiny-student").model.eval()
    whole = save_checkpoint(net, tmp_path / "w.safetensors", spec_name="tiny-student", info={})
    patches = save_checkpoint(net, tmp_path / "p.safetensors", spec_name="tiny-student", info={"patches": True})
    img = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(0).random((70, 100, 3)) * 255).astype(np.uint8)).save(img)
    got = {}
    for name, ckpt in (("whole", whole), ("patches", patches)):
        code, out, err = run_cli("score", img, "-m", "tiny-student", "-w", ckpt, "-j", "0", "-q")
        assert code == 0, err
        got[name] = float(out.splitlines()[1].split(",")[2])
    crops, _ = decode_views(img, View("patches", 64))
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(255.0)
    with torch.inference_mode():
        ref = float(net(x)[0].mean())
    assert got["patches"] == pytest.approx(ref, abs=1e-6)
    assert got["patches"] != pytest.approx(got["whole"], abs=1e-6)


def test_weights_alone_name_their_architecture(photos, run_cli, tmp_path):
    """--weights without --model: the checkpoint's config says what it is; a contradicting --model is one line."""
    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint

    _, files = photos
    teacher = save_checkpoint(load_model("tiny-teacher").model, tmp_path / "t.safetensors")
    code, out, err = run_cli("score", files[0], "-w", teacher, "-j", "0", "-q")
    assert code == 0 and len(out.splitlines()) == 2, err
    code, _, err = run_cli("score", files[0], "-m", "tiny-student", "-w", teacher, "-j", "0")
    assert code == 2 and err.count("\n") == 1 and "holds a teacher" in err and "drop --model" in err
    code, _, err = run_cli("score", files[0], "-m", "student", "-w", teacher, "-j", "0")  # the scorer's alias too
    assert code == 2 and "holds a teacher" in err
