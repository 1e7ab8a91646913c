"""`dpiqa score --ray`: on a local Ray with 2 CPUs, the same scores and reasons as `dpiqa score`, bit for bit
(both at one torch thread per process); a killed actor costs no file and duplicates none; --resume."""
from __future__ import annotations

import logging
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scoring_fixtures import PY, ROOT, cli_env, run_cli
from test_bad_inputs import build_zoo

from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.scoring.parquet_parts import PartsStore, parts_dir
from dpiqa_cli.scoring.writer import ResultWriter, format_score

try:
    import ray
except ImportError as exc:  # a hard failure, not a skip: CI must run these
    raise ImportError("tests/test_ray.py needs the ray extra: pip install -e '.[test,train,ray]' (README's test "
                      "command)") from exc
from dpiqa_cli.scoring import ray_job  # noqa: E402

MODEL = ["-m", "tiny-student", "--max-pixels", "50000"]  # the zoo's too_big.png is over 50,000 px


def _photos(d, n=40):
    rng = np.random.default_rng(3)
    for i in range(n):
        w, h = 48 + 7 * (i % 9), 40 + 5 * (i % 7)
        a = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        a[:, : w // 2] //= 1 + i % 4  # some structure, so that the scores differ
        img = Image.fromarray(a)
        img.save(d / f"photo_{i:02d}.jpg", quality=40 + i) if i % 2 else img.save(d / f"photo_{i:02d}.png")


def _scores(csv) -> pd.Series:
    """path -> score as the file writes it (6 significant digits), to compare with the API's full scores."""
    return pd.read_csv(csv, dtype={"score": str}).set_index("path")["score"]


@pytest.fixture(scope="module")
def cluster():
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=200_000_000,
             logging_level=logging.WARNING, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("ray_photos")
    _photos(d)
    expected = build_zoo(d)
    if os.geteuid() == 0:
        expected["unreadable.jpg"] = None  # root reads a chmod-000 file: scored on both paths
    return d, expected


@pytest.fixture(scope="module")
def reference(folder, tmp_path_factory):
    """`dpiqa score` without Ray, one torch thread (cli_env), in-process decoding."""
    d, _ = folder
    out = tmp_path_factory.mktemp("ref") / "ref.csv"
    r = run_cli("score", d, *MODEL, "--device", "cpu", "-j", "0", "-o", out)
    assert r.returncode == 1, r.stderr
    return out


def test_cli_on_ray_equals_dpiqa_score(cluster, folder, reference, tmp_path):
    d, expected = folder
    out = tmp_path / "ray.csv"
    r = run_cli("score", d, *MODEL, "--ray", cluster, "-o", out)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "2 Ray actors" in r.stderr
    assert out.read_text() == reference.read_text()  # ranking, scores, sizes: bit for bit
    errors = pd.read_csv(tmp_path / "ray.errors.csv")
    assert (tmp_path / "ray.errors.csv").read_text() == reference.with_name("ref.errors.csv").read_text()
    reasons = {os.path.basename(p): why for p, why in zip(errors["path"], errors["reason"])}
    assert {n for n, want in expected.items() if want} == set(reasons)
    assert all(want in reasons[n] for n, want in expected.items() if want)
    parts = pd.read_parquet(parts_dir(out))  # the partitions: one row per file of this single run
    assert len(parts) == 40 + len(expected) and parts["path"].is_unique


def test_python_api_on_bytes_decoded_in_tasks_native_view(cluster, folder, tmp_path):
    # Files read by Ray itself (as from an object store) and decoded in CPU tasks that feed the actors (the
    # GPU layout), for a model whose native view cuts a different number of crops from each photo: the
    # scores and reasons of `dpiqa score` on the same files, bit for bit.
    from dpiqa_cli.data.views import View
    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint

    d, _ = folder
    ckpt = save_checkpoint(load_model("tiny-student").model, tmp_path / "native.safetensors", spec_name="tiny-student",
                           info={"view": {"name": "native", "max_side": 128, "combine": "mean"}})
    photos = ["photo_00.png", "photo_03.jpg", "photo_06.png", "photo_13.jpg"]
    crops = {len(View("native", 64, max_side=128).layout(*Image.open(d / n).size)[1]) for n in photos}
    assert len(crops) > 1, crops  # the photos really differ in crop count
    names = photos + ["cmyk.jpg", "zero.jpg", "truncated.jpg", "text.jpg", "one_pixel.png", "too_big.png"]
    ref_out = tmp_path / "ref.csv"
    r = run_cli("score", *[d / n for n in names], "-m", ckpt, "--device", "cpu", "-j", "0", "--max-pixels", "50000",
                "-o", ref_out)
    assert r.returncode == 1, r.stderr
    ref = _scores(ref_out)
    ref_err = pd.read_csv(tmp_path / "ref.errors.csv").set_index("path")["reason"]
    ds = ray.data.read_binary_files([str(d / n) for n in names], include_paths=True)
    got = ray_job.score_dataset(ds, model=str(ckpt), device="cpu", max_pixels=50000, rows_per_batch=3,
                             decode_in_tasks=True).to_pandas()
    assert sorted(os.path.basename(p) for p in got["path"]) == sorted(names)
    for p, s, err in zip(got["path"], got["score"], got["error"]):
        key = str(d / os.path.basename(p))
        if key in ref.index:
            assert format_score(s) == ref[key] and pd.isna(err), p
        else:
            assert pd.isna(s) and err == ref_err[key], (p, err)
    assert len(ref) == len(photos) + 1  # the photos and the CMYK JPEG scored, the rest failed
    # --max-side reaches the actors: another limit, other crops, the same scores as `dpiqa score --max-side`
    big = tmp_path / "big.png"  # larger than both limits: 4 crops of 128 x 85 at 128, 2 of 96 x 64 at 64
    Image.fromarray((np.random.default_rng(5).random((200, 300, 3)) * 255).astype(np.uint8)).save(big)
    small = [str(big), str(d / photos[0])]
    r = run_cli("score", *small, "-m", ckpt, "--device", "cpu", "-j", "0", "--max-side", "64", "-o", tmp_path / "s.csv")
    assert r.returncode == 0, r.stderr
    limited = _scores(tmp_path / "s.csv")
    got = ray_job.score_dataset(ray.data.from_items([{"path": p} for p in small]), model=str(ckpt), device="cpu",
                             max_side=64).to_pandas().set_index("path")["score"]
    assert all(format_score(got[p]) == limited[p] for p in small)
    assert format_score(got[small[1]]) == ref[small[1]]  # the photo under both limits
    own = run_cli("score", big, "-m", ckpt, "--device", "cpu", "-j", "0", "-o", tmp_path / "b.csv")
    assert own.returncode == 0 and _scores(tmp_path / "b.csv")[str(big)] != format_score(got[str(big)])


def test_killed_actor_then_resume(cluster, folder, reference, tmp_path, monkeypatch):
    d, _ = folder
    ref = pd.read_csv(reference, dtype={"score": str}).set_index("path")
    paths = sorted(str(p) for p in d.iterdir())
    out = tmp_path / "k.csv"
    kw = dict(model="tiny-student", device="cpu", max_pixels=50000, out=out, progress=False, rows_per_batch=4)

    # 1. half the files, 7 batches over 2 actors: one reaches its 3rd batch, and exits there (once)
    marker = tmp_path / "actor-died"
    monkeypatch.setenv(ray_job.EXIT_HOOK, f"3:{marker}")
    first = paths[::2]
    df = ray_job.score_ray(first, **kw)
    assert marker.exists(), "the test hook never killed an actor"
    assert df["path"].is_unique and not set(df["path"]) & set(df.attrs["errors"])
    assert set(df["path"]) | set(df.attrs["errors"]) == set(first)  # every file exactly once
    assert all(ref.loc[p, "score"] == format_score(s) for p, s in zip(df["path"], df["score"]))
    monkeypatch.delenv(ray_job.EXIT_HOOK)

    # 2. all files with --resume: the scored half is skipped, the result is that of one uninterrupted run
    df = ray_job.score_ray(paths, resume=True, **kw)
    s = df.attrs["summary"]
    assert s["resumed"] == len([p for p in first if p in ref.index]) and s["new"] == len(ref) - s["resumed"]
    assert out.read_text() == reference.read_text()
    assert (tmp_path / "k.errors.csv").read_text() == reference.with_name("ref.errors.csv").read_text()


def test_interrupted_partitions_need_resume_and_the_same_model(tmp_path):
    out = tmp_path / "s.csv"
    meta = {"model": "tiny-student", "sha256": None, "input_size": 64, "view": "whole", "max_pixels": 50000}
    w = ResultWriter(out, store=PartsStore(out, flush_every=1))
    assert w.open(meta, ["/a.png", "/b.png", "/c.png"]) == ["/a.png", "/b.png", "/c.png"]
    w.add([("/a.png", 0.5, 10, 20, None), ("/b.png", None, 0, 0, "empty file (0 bytes)")])
    w.close()  # and no finish(): the driver died
    with pytest.raises(DpiqaError, match="--resume"):
        ResultWriter(out, store=PartsStore(out)).open(meta, ["/a.png"])
    with pytest.raises(DpiqaError, match="different max_pixels"):
        ResultWriter(out, resume=True, store=PartsStore(out)).open(dict(meta, max_pixels=1), ["/a.png"])
    w = ResultWriter(out, resume=True, store=PartsStore(out))
    assert w.open(meta, ["/a.png", "/b.png", "/c.png"]) == ["/b.png", "/c.png"]  # failed files are retried
    w.add([("/b.png", 0.25, 10, 20, None), ("/c.png", None, 0, 0, "not an image")])
    df, failed = w.finish(["/a.png", "/b.png", "/c.png"], None)
    assert list(df["path"]) == ["/a.png", "/b.png"] and failed == {"/c.png": "not an image"}
    assert len(pd.read_parquet(parts_dir(out))) == 4  # the partitions keep every row; the outputs each path once
    # a completed run is replaced by a new one without --resume, as a plain `dpiqa score` output is
    w = ResultWriter(out, store=PartsStore(out))
    assert w.open(meta, ["/a.png"]) == ["/a.png"] and not PartsStore(out).files()


def test_ray_is_imported_only_for_the_ray_path(tmp_path):
    code = ("import sys; import dpiqa_cli.cli, dpiqa_cli.scoring.pipeline; "
            "assert 'ray' not in sys.modules, 'ray imported at start-up'; sys.modules['ray'] = None; "
            "from dpiqa_cli.cli import main; main(sys.argv[1:])")
    (tmp_path / "a.png").write_bytes(b"")
    r = subprocess.run([PY, "-c", code, "score", str(tmp_path), "--ray", "local"], capture_output=True, text=True,
                       env=cli_env(), timeout=120, cwd=ROOT)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "--ray needs the Ray extra (ray is not installed)" in r.stderr and '.[ray]"' in r.stderr, r.stderr


def test_ray_scores_a_multiscale_model_as_score_does(cluster, tmp_path):
    """The multiscale view on the actors: a photo large enough for its detail crops, and a small one, get the
    scores `dpiqa score` gives them (crops cut by the same decode, combined by the same rule)."""
    from dpiqa_cli.data.views import View
    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint

    view = View("multiscale", 64, max_side=400, look_side=128, native_crops=2)
    ckpt = save_checkpoint(load_model("tiny-student").model, tmp_path / "m.safetensors", spec_name="tiny-student",
                           info={"view": view.to_config(), "calibration": {"kind": "logistic", "a": 9.0, "b": -1.0}})
    paths = []
    for name, size in (("big.png", (400, 300)), ("small.png", (120, 90))):
        Image.fromarray((np.random.default_rng(len(name)).random(size[::-1] + (3,)) * 255).astype(np.uint8)).save(
            tmp_path / name)
        paths.append(str(tmp_path / name))
    assert [view.n_crops(*Image.open(p).size) for p in paths] == [6, 4]
    r = run_cli("score", *paths, "-m", ckpt, "--device", "cpu", "-j", "0", "-o", tmp_path / "ref.csv")
    assert r.returncode == 0, r.stderr
    ref = _scores(tmp_path / "ref.csv")
    got = ray_job.score_dataset(ray.data.from_items([{"path": p} for p in paths]), model=str(ckpt),
                             device="cpu").to_pandas().set_index("path")["score"]
    assert {p: format_score(s) for p, s in got.items()} == {p: ref[p] for p in paths}
    assert all(0 < s < 1 for s in got)
