"""tools/default_model: the photo manifest and its split, fetch's checks, references and level photos.

No download here: fetch runs on a small fake cache, references on generated images.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dpiqa_cli.errors import DpiqaError
from tools.default_model import artefacts, fetch
from tools.default_model import manifest as M
from tools.default_model import references as R


@pytest.fixture(scope="module")
def rows():
    return M.load_manifest()


def natural(rows):
    return [p for p, r in rows.items() if r["photographic"] == "yes" and r["kind"] in M.NATURAL_KINDS]


# --- the manifest and its split ---

def test_manifest_schema(rows):
    with open(M.MANIFEST, newline="", encoding="utf-8") as f:
        assert tuple(next(csv.reader(f))) == M.COLUMNS
    assert len(rows) >= 90  # every candidate, excluded ones too
    for p, r in rows.items():
        assert re.fullmatch(r"[a-z0-9_]+", p), p
        assert r["split"] in M.SPLITS and r["photographic"] in ("yes", "no"), p
        assert re.fullmatch(r"[0-9a-f]{64}", r["sha256"]), p
        assert int(r["width"]) > 0 and int(r["height"]) > 0 and r["licence"], p
        pkg = M.package_of(r["source"])
        assert pkg is None or (pkg[0] and re.fullmatch(r"[0-9:.~+a-z-]+", pkg[1])), r["source"]
    # the same file never appears under two ids (so no photo can sit in two splits)
    assert len({r["sha256"] for r in rows.values()}) == len(rows)
    assert len({(r["source"], r["file"]) for r in rows.values()}) == len(rows)


def test_excluded_photos_say_why_and_used_ones_are_usable(rows):
    for p, r in rows.items():
        if r["split"] == "excluded":
            assert r["photographic"] == "no" or r["note"], f"{p}: a photo excluded without a note"
        else:
            assert r["photographic"] == "yes" and r["downscale"] in ("1", "2", "4"), p
            assert "none stated" not in r["licence"], p
            w, h = int(r["width"]) // int(r["downscale"]), int(r["height"]) // int(r["downscale"])
            assert min(w, h) >= R.CROP, f"{p}: {w}x{h} once artefact-free holds no 512x512 crop"


def test_split_sizes_and_level_photos(rows):
    nat = set(natural(rows))
    test, val = M.photos_in(rows, "test"), M.photos_in(rows, "val")
    assert len(test) >= 12 and set(test) <= nat
    assert len(val) >= 6 and set(val) <= nat
    for p in test + val:  # natural Debian photos big enough for the ~1024 px level benchmark
        assert M.is_level_photo(rows[p]), p
    # the test photos are fresh: no earlier split's val or test photo, whose scores someone has seen
    first, second = M.first_split(rows), M.second_split(rows)
    spent = {p for split in (first, second) for p, s in split.items() if s in ("val", "test")}
    assert len(test) == M.THIRD_TEST and not spent & set(test)
    assert {p for p, s in first.items() if s in ("val", "test")} <= set(val)  # rule 5
    assert {p for p, s in second.items() if s == "test"} <= set(M.photos_in(rows, "train"))  # rule 9
    assert {p for p, s in second.items() if s == "val"} == set(val)  # the third split keeps val
    assert len(M.photos_in(rows, "train")) >= 5 * 20  # several times the first split's 20 train photos
    assert not {"astronaut", "coffee", "chelsea", "clock"} & set(M.photos_in(rows, "train", "val", "test"))


def test_split_is_what_the_rule_gives(rows):
    assert M.assign_splits(rows) == {p: r["split"] for p, r in rows.items()}


def test_shares_are_proportional():
    assert M._shares({"a": 13, "b": 7, "c": 9}, 14) == {"a": 6, "b": 4, "c": 4}
    assert sum(M._shares({"a": 1, "b": 1, "c": 1}, 2).values()) == 2


# --- fetch, on a fake cache ---

DEB = "fake-wallpapers=1:2.0-1"


def _fake(tmp_path, data: bytes = b"pixels"):
    cache = tmp_path / "cache"
    file = "usr/share/backgrounds/one.jpg"
    path = fetch._unpacked_dir(cache, "fake-wallpapers", "1:2.0-1") / file
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    row = {c: "" for c in M.COLUMNS}
    row.update(photo="one", source=DEB, file=file, sha256=hashlib.sha256(data).hexdigest(), split="train")
    return cache, {"one": row}, path


def _no_subprocess(monkeypatch):
    def refuse(cmd, cwd=None):
        raise AssertionError(f"ran {cmd}")
    monkeypatch.setattr(fetch, "_run", refuse)


def test_fetch_reuses_a_verified_cache(tmp_path, monkeypatch):
    cache, rows, path = _fake(tmp_path)
    _no_subprocess(monkeypatch)
    assert fetch.fetch_photos(cache, rows=rows) == {"one": path}
    assert fetch.fetch_photos(cache, splits=("val",), rows=rows) == {}


def test_fetch_refuses_a_tampered_file(tmp_path, monkeypatch):
    cache, rows, path = _fake(tmp_path)
    _no_subprocess(monkeypatch)
    path.write_bytes(b"pixels, edited")
    with pytest.raises(DpiqaError, match="sha256 .* refusing to use it"):
        fetch.fetch_photos(cache, rows=rows)
    path.unlink()
    with pytest.raises(DpiqaError, match="missing"):
        fetch.fetch_photos(cache, rows=rows)


def test_fetch_says_to_run_apt_get_update(tmp_path, monkeypatch):
    _, rows, _ = _fake(tmp_path)
    calls = []

    def apt(cmd, cwd=None):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 100, "", "E: Unable to locate package fake-wallpapers\n")
    monkeypatch.setattr(fetch, "_run", apt)
    with pytest.raises(DpiqaError, match=r"cannot find fake-wallpapers=1:2.0-1: run `apt-get update`"):
        fetch.fetch_photos(tmp_path / "empty", rows=rows)
    assert calls == [["apt-get", "download", "fake-wallpapers=1:2.0-1"]]


def test_fetch_checks_python_package_files(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped.png"
    shipped.write_bytes(b"shipped bytes")
    row = {c: "" for c in M.COLUMNS}
    row.update(photo="pic", source="matplotlib", file="matplotlib/mpl-data/sample_data/pic.png (loader)",
               sha256=hashlib.sha256(b"shipped bytes").hexdigest(), split="train")
    monkeypatch.setattr(fetch, "_installed_file", lambda source, file: shipped)
    got = fetch.fetch_photos(tmp_path / "cache", rows={"pic": row})["pic"]
    assert got == tmp_path / "cache" / "python" / "matplotlib" / "pic.png" and got.read_bytes() == b"shipped bytes"
    shipped.write_bytes(b"another release")
    got.unlink()
    with pytest.raises(DpiqaError, match="ships other bytes"):
        fetch.fetch_photos(tmp_path / "cache", rows={"pic": row})


# --- the artefact rule ---

def _photo_like(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    f = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None, :] ** 2)
    y = np.real(np.fft.ifft2(np.exp(2j * np.pi * rng.random((h, w))) / np.maximum(f, 1 / max(w, h))))
    y = (y - y.min()) / np.ptp(y) * 255
    return Image.fromarray(np.clip(y[..., None] * [1.0, 0.85, 0.7], 0, 255).astype(np.uint8))


def test_blockiness_sees_jpeg_blocks_and_they_fade_when_reduced():
    clean = _photo_like(512, 512)
    buf = io.BytesIO()
    clean.save(buf, format="JPEG", quality=15)
    jpeg = Image.open(io.BytesIO(buf.getvalue()))
    assert artefacts.blockiness(clean, 1) <= artefacts.MAX_BLOCKINESS < artefacts.blockiness(jpeg, 1)
    assert artefacts.blockiness(jpeg, 4) < artefacts.blockiness(jpeg, 2) < artefacts.blockiness(jpeg, 1)
    assert artefacts.artefact_free_factor(clean)[0] == 1
    assert artefacts.artefact_free_factor(clean.resize((1600, 1600)))[0] == 2  # camera size: at least 2


# --- references and level photos, on generated images ---

def _rows_for(tmp_path, splits: dict[str, str], size=(1100, 800)):
    photos, rows = {}, {}
    for i, (photo, split) in enumerate(splits.items()):
        photos[photo] = tmp_path / f"{photo}.png"
        _photo_like(*size, seed=i).save(photos[photo])
        row = {c: "" for c in M.COLUMNS}
        row.update(photo=photo, split=split, downscale="1", width=str(size[0]), height=str(size[1]))
        rows[photo] = row
    return photos, rows


def test_references_are_deterministic_square_crops(tmp_path):
    photos, rows = _rows_for(tmp_path, {"p1": "train", "p2": "train"})
    a = R.make_references(photos, tmp_path / "a", rows=rows, stride=512)
    b = R.make_references(photos, tmp_path / "b", rows=rows, stride=512)
    assert a == b and len(a) > 2 * len(R.scale_sizes(1100, 800, 1))
    assert {r["photo"] for r in a} == {"p1", "p2"} and {r["split"] for r in a} == {"train"}
    for r in a:
        assert (tmp_path / "a" / r["ref"]).read_bytes() == (tmp_path / "b" / r["ref"]).read_bytes()
        assert Image.open(tmp_path / "a" / r["ref"]).size == (R.CROP, R.CROP)
    with open(tmp_path / "a" / "references.csv", newline="") as f:
        assert [row["ref"] for row in csv.DictReader(f)] == [r["ref"] for r in a]
    capped = R.make_references(photos, tmp_path / "c", rows=rows, stride=512, max_per_photo=3)
    assert len(capped) == 6 and all(r in a for r in capped)


def test_references_skip_featureless_crops_and_never_use_test_photos(tmp_path):
    photos, rows = _rows_for(tmp_path, {"flat": "val", "held": "test"})
    Image.new("RGB", (1100, 800), (90, 120, 200)).save(photos["flat"])  # clear sky
    assert R.make_references({"flat": photos["flat"]}, tmp_path / "v", rows=rows) == []
    with pytest.raises(DpiqaError, match="test photo"):
        R.make_references({"held": photos["held"]}, tmp_path / "t", rows=rows)


def test_scales_stay_artefact_free_and_hold_a_crop():
    for w, h, f in ((5120, 2880, 2), (2560, 1600, 2), (4352, 2448, 4), (1365, 1074, 1), (512, 512, 1)):
        sizes = R.scale_sizes(w, h, f)
        assert sizes, (w, h, f)
        longs = [max(s) for s in sizes]
        assert all(a > b for a, b in zip(longs, longs[1:])) and longs[0] <= max(w, h) // f
        assert all(min(s) >= R.CROP for s in sizes)
    assert R.positions(512) == [0] and R.positions(1280, stride=256)[-1] == 1280 - R.CROP


def test_eval_photos_are_whole_and_never_upscaled(tmp_path):
    photos, rows = _rows_for(tmp_path, {"big": "test", "small": "val"})
    rows["big"]["downscale"] = "1"
    Image.open(photos["small"]).resize((900, 600)).save(photos["small"])
    rows["small"].update(width="900", height="600")
    out = R.prepare_eval_photos(photos, tmp_path / "eval", rows=rows)
    assert Image.open(out["big"]).size == (1024, 745)
    assert Image.open(out["small"]).size == (900, 600)


# ---- the build's own pieces (tools/default_model/build.py, card.py, choose.py, recipes.py, size_check.py) ----


def test_card_blocks_are_replaced_and_a_missing_block_is_an_error(tmp_path):
    from tools.default_model import card

    t, p = tmp_path / "card.md", tmp_path / "README.md"
    t.write_text("intro\n<!-- build:test -->\nold\n<!-- /build:test -->\nkept\n")
    card.write(p, {"test": "| a | b |\n"}, template=t)
    assert p.read_text() == "intro\n<!-- build:test -->\n| a | b |\n<!-- /build:test -->\nkept\n"
    assert "old" in t.read_text()  # the template stays as it is
    with pytest.raises(SystemExit, match="no build:choice block"):
        card.write(p, {"choice": "x"}, template=t)
    assert card.TEMPLATE.is_file() and "<!-- build:test -->" in card.TEMPLATE.read_text()


def test_card_refresh_takes_the_templates_text_and_keeps_the_builds_blocks(tmp_path):
    from tools.default_model import card

    t, p = tmp_path / "card.md", tmp_path / "README.md"
    p.write_text("old intro\n<!-- build:test -->\n| 0.958 |\n<!-- /build:test -->\n"
                 "<!-- build:file -->\n- sha\n<!-- /build:file -->\n")
    t.write_text("new intro\n<!-- build:file -->\n(written by the build)\n<!-- /build:file -->\nmid\n"
                 "<!-- build:test -->\n(written by the build)\n<!-- /build:test -->\nnew end\n")
    card.refresh(p, t)
    assert p.read_text() == ("new intro\n<!-- build:file -->\n- sha\n<!-- /build:file -->\nmid\n"
                             "<!-- build:test -->\n| 0.958 |\n<!-- /build:test -->\nnew end\n")
    t.write_text(t.read_text() + "<!-- build:timing -->\nx\n<!-- /build:timing -->\n")
    before = p.read_text()
    with pytest.raises(SystemExit, match=r"lacks the build blocks \['timing'\]"):
        card.refresh(p, t)
    assert p.read_text() == before  # nothing half-written


def test_the_bundled_card_is_its_template_with_the_builds_blocks(tmp_path):
    from tools.default_model import card

    copy = tmp_path / "README.md"
    copy.write_text(card.CARD.read_text(encoding="utf-8"), encoding="utf-8")
    card.refresh(copy)
    assert copy.read_text(encoding="utf-8") == card.CARD.read_text(encoding="utf-8"), \
        "weights/README.md differs from tools/default_model/card.md: run python -m tools.default_model.card"


def _tiny_runs(tmp_path, view: dict) -> list:
    import torch

    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint

    runs = []
    for k in (0, 1):
        torch.manual_seed(k)
        runs.append(save_checkpoint(load_model("tiny-student").model, tmp_path / f"r-{k}" / "epoch-1.safetensors",
                                    spec_name="tiny-student", info={"view": view}))
    return runs


def _photos(tmp_path, n: int, size: tuple[int, int]) -> dict:
    out = {}
    for i in range(n):
        p = tmp_path / f"{size[0]}-{i}.png"
        rng = np.random.default_rng(i)
        small = Image.fromarray((rng.random((size[1] // 8, size[0] // 8, 3)) * 255).astype(np.uint8))
        small.resize(size, Image.BICUBIC).save(p)
        out[f"p{i}"] = p
    return out


def test_choose_asks_every_candidate_every_val_question_and_picks_the_view(tmp_path):
    """Two runs of a recipe and their average, asked the level, camera and size questions on three val photos;
    the recipe's score is its runs' mean; the view's K and w are chosen on the size check; the build bundles the
    chosen view and calibration, and the card's tables name every candidate."""
    import torch
    from safetensors.torch import load_file

    from dpiqa_cli.data.views import View
    from dpiqa_cli.models.checkpoint_config import read_config
    from tools.default_model import card
    from tools.default_model.build import bundle
    from tools.default_model.choose import NATIVE_CROPS, WEIGHTS, choose, fit_calibration, prepare, write_average
    from tools.default_model.scorers import crop_scores

    view = View("multiscale", 64, max_side=1600, look_side=128).to_config()
    runs = _tiny_runs(tmp_path, view)
    avg = write_average(runs, tmp_path / "avg.safetensors")
    a, b, m = (load_file(p) for p in (*runs, avg))
    assert all(torch.allclose(m[k], (a[k] + b[k]) / 2) for k in m if m[k].is_floating_point())
    levels, sources = _photos(tmp_path, 3, (96, 72)), _photos(tmp_path, 3, (1600, 1200))
    vs = prepare(levels, sources, tmp_path / "val")
    assert set(vs.copies["p0"]) == {"full", "1024"} and len(vs.camera) == 3 * (1 + 9 * 4)
    result = choose({"r": runs}, {"r": avg}, vs, tmp_path / "work", log=lambda *_: None)
    assert [Path(r["checkpoint"]).name for r in result["rows"]] == ["epoch-1.safetensors"] * 2 + ["avg.safetensors"]
    rec = result["recipes"]["r"]
    assert rec["mean"] == pytest.approx(np.mean(rec["runs"])) and rec["spread"] == pytest.approx(np.ptp(rec["runs"]))
    assert result["chosen"] == max(result["rows"], key=lambda r: r["score"])["checkpoint"]
    for r in result["rows"]:
        assert r["sizes"]["photos"] == 3 and r["pristine"]["cases"] == 3 * (3 + 9) and len(r["camera"]) == 9
    assert [(r["native_crops"], r["native_weight"]) for r in result["view"]["rows"]] == [
        (k, w) for k in NATIVE_CROPS for w in WEIGHTS]
    full = vs.copies["p0"]["full"][0]
    assert [len(crop_scores(runs[0], [full], native_crops=k)[0][0]) for k in NATIVE_CROPS] == [4 + k for k in NATIVE_CROPS]
    chosen = View("multiscale", 64, max_side=1600, look_side=128, native_crops=result["view"]["native_crops"],
                  native_weight=result["view"]["native_weight"])
    files = [vs.levels[k] for k in list(vs.levels)[:12]]
    labels = list(np.linspace(1.0, 0.2, len(files)))
    cal = fit_calibration(Path(result["chosen"]), chosen, files, labels)
    assert cal["a"] > 0 and cal["rmse"] <= cal["rmse_raw"] + 1e-9 and cal["images"] == 12
    out = bundle(result["chosen"], chosen, cal, tmp_path / "b.safetensors", {})
    config = read_config(out)[1]
    assert config["view"] == chosen.to_config() and config["calibration"] == {k: cal[k] for k in ("kind", "a", "b")}
    table = card.choice_table(result)
    assert table.count("**(chosen)**") == 1 and table.count("\n") == 2 + 3 and all(f"| r-{k}/epoch-1.safetensors" in table for k in (0, 1))
    assert card.view_table(result).count("\n") == 2 + len(NATIVE_CROPS) * len(WEIGHTS)
    assert "**(chosen)**" in card.recipe_table(result)


def test_recipes_relabel_the_superset_and_keep_their_rows(tmp_path):
    from dpiqa_cli.data.synth import make_labels
    from tools.default_model.recipes import ALWAYS, recipe_table

    rows = []
    for split, ref in (("train", "a"), ("train", "b"), ("val", "c")):
        rows.append(dict(path=f"{ref}.png", ref=ref, type="pristine", level=0, fr=1.0, de=0.0, mos=1.0, split=split))
        for t in (*ALWAYS, "haze", "color_cast"):
            for lv in (1, 2):
                rows.append(dict(path=f"{ref}_{t}_{lv}.png", ref=ref, type=t, level=lv, fr=1 - 0.1 * lv,
                                 de=10.0 * lv if t in ("haze", "color_cast") else 1.0, mos=0.0, split=split))
    sup = pd.DataFrame(rows)
    image, tone, rare = (recipe_table(sup, r) for r in ("image", "tone", "tone-rare"))
    dist = sup[sup.type != "pristine"]
    np.testing.assert_allclose(image.loc[image.type != "pristine", "mos"],
                               make_labels(dist[["path", "ref", "type", "level", "fr", "de"]], "image")["mos"], atol=1e-6)
    assert (tone["mos"] <= image["mos"] + 1e-9).all() and (tone.loc[tone.type == "haze", "mos"] < 0.8).all()
    assert (image.loc[image.type == "pristine", "mos"] == 1.0).all()
    # rare: the train references keep blur, noise, JPEG and their first camera type (haze before color_cast)
    kept = set(rare[rare.split == "train"].type)
    assert kept == {"pristine", *ALWAYS, "haze"} and set(rare[rare.split == "val"].type) == set(sup.type)


def test_size_check_copies_and_questions(tmp_path):
    from tools.default_model import size_check

    src = _photos(tmp_path, 1, (300, 200))["p0"]
    small = _photos(tmp_path, 1, (150, 100))["p0"]
    copies = size_check.make_copies(src, small, tmp_path / "c", "x")
    for size, w in (("full", 300), ("1024", 150)):
        clean, noisy = (np.asarray(Image.open(p), dtype=float) for p in copies[size])
        assert clean.shape[1] == w and 4 < np.std(noisy - clean) < 8  # sigma 6, clipped at 0 and 255
    scores = {"a": {"full": (0.9, 0.8), "1024": (0.95, 0.9)}, "b": {"full": (0.5, 0.6), "1024": (0.6, 0.5)},
              "c": {"full": (0.7, 0.6), "1024": (0.75, 0.7)}}
    s = size_check.summarise(scores)
    assert s["size_srcc"] == pytest.approx(1.0) and s["noise_lower"] == {"full": 2, "1024": 3}
    assert s["noise_missed"]["full"] == ["b"] and "| x | 1.000 |" in size_check.table({"x": s})


def test_make_dataset_joins_the_synth_folders_with_their_split(tmp_path):
    from tools.default_model.build import make_dataset

    for split in ("train", "val"):
        d = tmp_path / split
        d.mkdir()
        (d / "synth.csv").write_text(f"path,mos,ref\nimages/{split}_a.png,0.5,refs/{split}.png\n")
    out = make_dataset({"train": tmp_path / "train", "val": tmp_path / "val"}, tmp_path)
    t = pd.read_csv(out)
    assert t["path"].tolist() == ["train/images/train_a.png", "val/images/val_a.png"]
    assert t["ref"].tolist() == ["train/refs/train.png", "val/refs/val.png"] and t["split"].tolist() == ["train", "val"]
