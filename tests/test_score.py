"""`dpiqa score` on real photos: every file, ranked, reproducible across runs and worker counts."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scoring_fixtures import write_photos
from usage_checks import usage_error

from dpiqa_cli.data.discover import discover
from dpiqa_cli.data.images import decode_uint8
from dpiqa_cli.device import resolve_device, resolve_precision
from dpiqa_cli.errors import DpiqaError


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


def test_jsonl_parquet_and_stdout_hold_what_the_csv_holds(photos, run_cli, tmp_path):
    folder, files = photos
    frames = {}
    for suffix in ("csv", "jsonl", "parquet"):  # pyarrow comes with the test extra
        out = tmp_path / f"s.{suffix}"
        code, _, err = run_cli("score", folder, "-m", "tiny-student", "--device", "cpu", "-j", "0", "-q", "-o", out)
        assert code == 0, err
        frames[suffix] = {"csv": pd.read_csv, "jsonl": lambda f: pd.read_json(f, lines=True),
                          "parquet": pd.read_parquet}[suffix](out)
    assert len(frames["csv"]) == len(files) and frames["csv"]["rank"].iloc[0] == 1
    assert list(frames["parquet"].columns) == list(frames["csv"].columns)
    for suffix in ("jsonl", "parquet"):
        got, want = frames[suffix], frames["csv"]
        assert list(got["path"]) == list(want["path"]) and list(got["rank"]) == list(want["rank"]), suffix
        assert list(got["width"]) == list(want["width"]) and list(got["height"]) == list(want["height"]), suffix
        assert np.allclose(got["score"], want["score"], rtol=0, atol=1e-7), suffix
    code, out, _ = run_cli("score", files[0], files[1], "-m", "tiny-student", "--device", "cpu", "-j", "0", "-q")
    assert code == 0 and out.splitlines()[0] == "rank,path,score,width,height" and len(out.splitlines()) == 3


def test_parquet_without_pyarrow_is_one_line_before_any_work(photos, run_cli, tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.partition(".")[0] == "pyarrow":
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    code, _, err = run_cli("score", photos[0], "-m", "tiny-student", "-o", tmp_path / "s.parquet")
    usage_error(code, err, "pyarrow")
    assert not list(tmp_path.iterdir())


def test_exit_codes_and_bad_args(tmp_path, run_cli):
    (tmp_path / "junk.jpg").write_text("not an image")
    code, _, err = run_cli("score", tmp_path / "junk.jpg", "-m", "tiny-student", "-j", "0")
    assert code == 4 and "not an image" in err  # nothing scored: apart from 2, a usage mistake
    code, _, err = run_cli("score", tmp_path, "-m", "tiny-student", "--precision", "fp8")
    assert usage_error(code, err).startswith("error: --precision")
    code, _, err = run_cli("score", tmp_path / "empty_dir_*", "-m", "tiny-student")
    usage_error(code, err, "no file matches", "empty_dir_*")  # nothing else given: one line, no warning before it
    (tmp_path / "ok.png").write_bytes(b"")
    code, _, err = run_cli("score", tmp_path / "empty_dir_*", tmp_path / "ok.png", "-m", "tiny-student", "-q")
    assert "warning: no file matches" in err and "empty_dir_*" in err  # something else to score: a warning
    code, _, err = run_cli("score", tmp_path, "-m", "tiny-student", "-o", tmp_path / "x.txt")
    usage_error(code, err, ".csv, .jsonl or .parquet")


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

    from dpiqa_cli.scoring.pipeline import score_paths

    got = json.loads((report / "report.json").read_text())["splits"][0]["metrics"]
    # the report uses every bit of the scores, the file holds 6 digits (ties for the random tiny model)
    scored = score_paths(files, model="tiny-student", device="cpu", workers=0, progress=False)
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
    # DMOS: lower is better; both columns are written to 6 significant digits
    np.testing.assert_allclose(df["mos"], 100.0 - 100.0 * df["score"], rtol=1e-5)


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
    usage_error(code, err, "holds a teacher", "drop --model")
    code, _, err = run_cli("score", files[0], "-m", "student", "-w", teacher, "-j", "0")  # the scorer's alias too
    usage_error(code, err, "holds a teacher")


def test_speed_counts_scored_photos_and_states_a_first_export_apart(photos, run_cli, tmp_path, monkeypatch):
    """The rate is scored photos per second of the scoring loop (failed files are not scored); the one-time
    ONNX export of a checkpoint's first use is reported beside it, never folded into it."""
    import re

    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint

    _, files = photos
    monkeypatch.setenv("DPIQA_CACHE_DIR", str(tmp_path / "empty-cache"))
    ckpt = save_checkpoint(load_model("tiny-student").model, tmp_path / "t.safetensors", spec_name="tiny-student")
    (tmp_path / "bad.jpg").write_text("not a photo")
    (tmp_path / "zero.jpg").write_bytes(b"")
    args = ["score", *files[:4], tmp_path / "bad.jpg", tmp_path / "zero.jpg", "-w", ckpt, "--device", "cpu", "-j", "0"]
    speeds = []
    for run in ("first", "cached"):
        code, _, err = run_cli(*args, "-o", tmp_path / f"{run}.csv")
        assert code == 1, err
        lines = err.splitlines()
        assert lines[-2] == f"scored 4, failed 2 (see {tmp_path / f'{run}.errors.csv'})"
        m = re.fullmatch(r"speed: ([\d.]+) img/s \(4 scored in ([\d.]+) s\); wall ([\d.]+) s(.*)", lines[-1])
        assert m, lines[-1]
        speeds.append(m.groups())
    assert re.fullmatch(r", of which [\d.]+ s a one-time ONNX export \(first use of this model\)", speeds[0][3])
    assert speeds[1][3] == ""  # cached: nothing to state
    code, _, err = run_cli("score", tmp_path / "bad.jpg", tmp_path / "zero.jpg", "-w", ckpt, "-j", "0")
    assert code == 4 and err.splitlines()[-1].startswith("speed: none scored in this run; wall ")

    from dpiqa_cli.scoring.pipeline import score_paths

    df = score_paths([*files[:3], tmp_path / "bad.jpg"], weights=ckpt, device="cpu", workers=0, progress=False)
    s = df.attrs["summary"]
    assert (s["scored"], s["failed"], s["new"], s["export_s"]) == (3, 1, 3, 0.0)
    assert s["images_per_s"] == pytest.approx(3 / s["loop_s"])


def test_mos_column_only_for_a_model_trained_on_mos(photos, run_cli, tmp_path):
    """Synthetic labels (the bundled model's `synth` scale) are no MOS: no `mos` column repeating the score."""
    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint

    _, files = photos
    net = load_model("tiny-student").model
    cols = {}
    for name, scale in (("synth", {"name": "synth", "min": 0.0, "max": 1.0, "lower_better": False}),
                        ("koniq", {"name": "koniq", "min": 0.0, "max": 100.0, "lower_better": False})):
        ckpt = save_checkpoint(net, tmp_path / f"{name}.safetensors", spec_name="tiny-student",
                               info={"mos_scale": scale})
        code, _, err = run_cli("score", *files[:3], "-w", ckpt, "--runtime", "torch", "-j", "0", "-o",
                               tmp_path / f"{name}.csv")
        assert code == 0, err
        cols[name] = pd.read_csv(tmp_path / f"{name}.csv")
    assert list(cols["synth"].columns) == ["rank", "path", "score", "width", "height"]
    np.testing.assert_allclose(cols["koniq"]["mos"], 100 * cols["koniq"]["score"], rtol=1e-5)
    from dpiqa_cli.models.checkpoint_config import read_config, scores_meaning
    from dpiqa_cli.models.registry import get_spec

    bundled = read_config(get_spec("student").default_weights)[1]
    assert "not MOS" in scores_meaning(bundled)  # what `dpiqa models` prints for the default scorer


def test_results_hold_6_significant_digits_and_relative_paths_as_given(photos, run_cli, tmp_path, monkeypatch):
    import shutil

    folder, files = photos
    shutil.copytree(folder, tmp_path / "shoot")
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("score", "shoot", "-m", "tiny-student", "--device", "cpu", "-j", "0", "-o", "scores.csv")
    assert code == 0, err
    text = (tmp_path / "scores.csv").read_text().splitlines()
    rows = [line.split(",") for line in text[1:]]
    assert all(r[1].startswith("shoot/") for r in rows) and len(rows) == len(files)
    assert all(len(r[2].lstrip("-0.").replace(".", "").split("e")[0]) <= 6 for r in rows), rows[:3]
    code, stdout, err = run_cli("score", "shoot", "-m", "tiny-student", "--device", "cpu", "-j", "0", "-q")
    assert code == 0 and stdout.splitlines() == text  # stdout: the same rows
    # a results file elsewhere: its relative paths are relative to its own folder, as the gallery reads them
    code, _, err = run_cli("score", "shoot", "-m", "tiny-student", "--device", "cpu", "-j", "0", "-o", "out/s.csv")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "out" / "s.csv")["path"].str.startswith("../shoot/").all()
    elsewhere, here = (pd.read_csv(tmp_path / f)["score"].tolist() for f in ("out/s.csv", "scores.csv"))
    assert elsewhere == here
