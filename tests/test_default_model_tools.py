"""tools/default_model: the photo manifest and its split, fetch's checks, references and level photos.

No download here: fetch runs on a small fake cache, references on generated images.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dpiqa_cli.errors import DpiqaError
from tools.default_model import artefacts, fetch, manifest as M, references as R


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
    assert {M.collection(rows[p]["source"]) for p in test} == {"endless-sky", "other"}
    # the second split's test photos are fresh: none from the first split's sources, whose test photos are spent
    assert not any(M.is_first(rows[p]["source"]) for p in test)
    first = M.first_split(rows)
    assert {p for p, s in first.items() if s in ("val", "test")} <= set(val)  # rule 5
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


# ---- the build's own pieces (tools/default_model/build.py, card.py, choose.py, view_check.py) --------------


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


def test_choice_rule_and_candidate_order(tmp_path):
    from tools.default_model.choose import epoch_files, selection_score

    for name in ("epoch-10", "epoch-2", "epoch-1", "avg-last-2", "epoch-x"):
        (tmp_path / f"{name}.safetensors").write_bytes(b"")
    assert [p.stem for p in epoch_files(tmp_path)] == ["epoch-1", "epoch-2", "epoch-10"]
    s = {"per_type": {t: {"srcc": v} for t, v in (("blur", 1.0), ("noise", 0.8), ("jpeg", 0.6))},
         "pristine_vs_level3": {"rate": 0.6}}
    assert selection_score(s) == pytest.approx(0.75)
    assert selection_score(s, view_rate=0.5) == pytest.approx(0.7)  # the view check counts as one more question


def test_choose_asks_every_candidate_the_level_and_view_questions(tmp_path):
    """Two runs' weights and their average, each under two working-scale limits and both crop combinations,
    scored on one val photo's level set and its view-check pair; the table names each run's epoch by its run,
    and the build bundles the chosen limit and combination into the file's view."""
    import torch
    from safetensors.torch import load_file

    from dpiqa_cli.data.views import View
    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint
    from dpiqa_cli.models.config import read_config
    from tools.default_model.build import bundle
    from tools.default_model.card import choice_table
    from tools.default_model.choose import choose, write_average
    from tools.default_model.scorers import crop_scores

    runs = []
    for k in (0, 1):
        torch.manual_seed(k)
        (tmp_path / f"run-{k}").mkdir()
        runs.append(save_checkpoint(load_model("tiny-student").model, tmp_path / f"run-{k}" / "epoch-1.safetensors",
                                    spec_name="tiny-student",
                                    info={"view": {"name": "native", "max_side": 128, "combine": "mean"}}))
    avg = write_average(runs, tmp_path / "average-of-runs.safetensors")
    a, b, m = (load_file(p) for p in (*runs, avg))
    assert all(torch.allclose(m[k], (a[k] + b[k]) / 2) for k in m if m[k].is_floating_point())
    photo = tmp_path / "p.png"
    Image.fromarray((np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)).save(photo)
    result = choose([*runs, avg], {"p": photo}, tmp_path / "work", log=lambda *_: None, max_sides=(128, 256))
    assert [(Path(r["checkpoint"]).name, r["max_side"], r["combine"]) for r in result["rows"]] == [
        (n, limit, c) for n in ("epoch-1.safetensors", "epoch-1.safetensors", "average-of-runs.safetensors")
        for limit in (128, 256) for c in ("mean", "q25")]
    assert all(r["view_pairs"] == 1 and r["view_lower"] in (0, 1) and r["cases"] == 3 for r in result["rows"])
    best = max(result["rows"], key=lambda r: r["score"])
    assert (result["chosen"], result["max_side"], result["combine"]) == (best["checkpoint"], best["max_side"], best["combine"])
    assert json.loads((tmp_path / "work" / "choose.json").read_text())["chosen"] == result["chosen"]
    # the limit really changes the cutting of the 4000 x 3000 pair: 2 x 2 crops at 128 px, 4 x 3 at 256
    pair = tmp_path / "work" / "val-view-check" / "p_clean.png"
    assert [len(crop_scores(runs[0], [pair], max_side=limit)[0]) for limit in (128, 256)] == [
        len(View("native", 64, limit).layout(4000, 3000)[1]) for limit in (128, 256)] == [4, 12]
    table = choice_table(result)
    assert "| run-0/epoch-1.safetensors" in table and "| run-1/epoch-1.safetensors" in table
    assert "| average-of-runs.safetensors" in table and table.count("**(chosen)**") == 1
    assert "view check, score ≤128" in table and "view check, score ≤256" in table and table.count("\n") == 2 + 6
    out = bundle({**result, "chosen": str(runs[1]), "max_side": 256, "combine": "q25"}, tmp_path / "b.safetensors", {})
    assert read_config(out)[1]["view"] == {"name": "native", "max_side": 256, "combine": "q25"}


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


def test_view_check_scores_clean_and_noisy_copies_under_both_views(tmp_path):
    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint
    from tools.default_model.view_check import view_check

    ckpt = save_checkpoint(load_model("tiny-student").model, tmp_path / "t.safetensors", spec_name="tiny-student",
                           info={"view": {"name": "native", "max_side": 128, "combine": "mean"}})
    photo = tmp_path / "p.png"
    Image.fromarray((np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)).save(photo)
    check = view_check(ckpt, {"p": photo}, tmp_path / "work")
    assert check["photos"] == 1 and set(check["rows"]) == {"native", "whole"}
    clean, noisy = check["rows"]["native"]["p"]
    assert check["lower"]["native"] == int(noisy < clean) and "| native |" in check["table"]
    with Image.open(tmp_path / "work" / "p_noisy.png") as im:
        assert im.size == (4000, 3000)
