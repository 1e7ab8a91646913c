"""`dpiqa gallery`: reading every scores format, thumbnails, escaping, inline vs folder, the CLI."""
from __future__ import annotations

import json
import os
import re

import numpy as np
import pandas as pd
import pytest
from gallery_fixtures import HOSTILE, HOSTILE_FAILED, make_photos, three_failures, write_scores
from PIL import Image

from dpiqa_cli.data.images import ImageError, load_rgb, load_thumbnail
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.gallery import build_gallery
from dpiqa_cli.gallery.page import json_for_script
from dpiqa_cli.gallery.table import read_scores


def page_data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="gallery-data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """12 generated photos (every colour mode, EXIF rotation, the hostile name), scored, 3 failures."""
    root = tmp_path_factory.mktemp("gal")
    paths = make_photos(root / "photos", 12)
    df = write_scores(paths, root / "scores.csv", failed=three_failures(root / "photos"))
    return root, paths, df


# ---- thumbnails decode as scoring does -----------------------------------------------------


def test_load_thumbnail_fits_orients_and_converts(tmp_path):
    y, x = np.mgrid[0:300, 0:600]
    a = np.stack([x * 255 // 599, y * 255 // 299, np.full_like(x, 90)], -1).astype(np.uint8)  # smooth, not symmetric
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 600x300, shown 300x600
    Image.fromarray(a).save(tmp_path / "rot.jpg", quality=95, exif=exif)
    img, orig = load_thumbnail(tmp_path / "rot.jpg", 128)  # the JPEG draft (1/4) is taken in stored orientation
    assert orig == (300, 600) and img.size == (64, 128) and img.mode == "RGB"
    # what the scorer's decoder sees (no draft), resized to the same box: same orientation, same pixels
    full, _ = load_rgb(tmp_path / "rot.jpg", (64, 128), draft=False)
    assert np.abs(np.asarray(img, np.float32) - np.asarray(full, np.float32)).mean() < 3
    Image.fromarray(a[:40, :50]).convert("CMYK").save(tmp_path / "small.jpg")
    img, orig = load_thumbnail(tmp_path / "small.jpg", 128)
    assert img.size == orig == (50, 40) and img.mode == "RGB", "never enlarged; CMYK becomes RGB"
    Image.fromarray(np.full((64, 64), 65535, np.uint16)).save(tmp_path / "g16.png")
    img, _ = load_thumbnail(tmp_path / "g16.png", 32)
    assert img.getpixel((0, 0)) == (255, 255, 255), "16-bit scaled, not clipped"
    with pytest.raises(ImageError, match="too many pixels"):
        load_thumbnail(tmp_path / "rot.jpg", 128, max_pixels=1000)
    with pytest.raises(ImageError, match="no such file"):
        load_thumbnail(tmp_path / "gone.jpg", 128)


# ---- escaping ------------------------------------------------------------------------------


def test_json_for_script_cannot_close_the_block():
    text = json_for_script({"p": "</script><script>alert(1)</script>&amp;"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"p": "</script><script>alert(1)</script>&amp;"}


def test_hostile_names_are_data_not_markup(shot, tmp_path):
    root, _, _ = shot
    out = tmp_path / "g.html"
    build_gallery(root / "scores.csv", out, title="</title><script>alert(2)</script>", progress=False)
    html = out.read_text(encoding="utf-8")
    assert "<img src=x" not in html and "<script>window.__pwned" not in html and "alert(2)</script>" not in html
    assert "&lt;/title&gt;&lt;script&gt;" in html
    data = page_data(html)
    assert any(r[1].endswith(HOSTILE) for r in data["rows"])
    assert any(f[0].endswith(HOSTILE_FAILED) for f in data["failed"])
    hostile = next(r for r in data["rows"] if r[1].endswith(HOSTILE))
    assert hostile[8].startswith("file:///") and "<" not in hostile[8], "links are percent-encoded file: URLs"
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert "script-src 'sha256-" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp


def test_js_never_uses_innerhtml():
    from dpiqa_cli.gallery.page import _asset

    js = _asset("gallery.js")
    assert not re.search(r"\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\(", js)


# ---- content ---------------------------------------------------------------------------------


def test_rows_thumbnails_and_failures(shot, tmp_path):
    root, paths, df = shot
    out = tmp_path / "g.html"
    s = build_gallery(root / "scores.csv", out, workers=0, progress=False)
    assert s["mode"] == "inline" and s["photos"] == 12 and s["failed"] == 3 and s["no_thumbnail"] == 0
    data = page_data(out.read_text(encoding="utf-8"))
    assert [r[1] for r in data["rows"]] == list(df["path"]) and [r[0] for r in data["rows"]] == list(range(1, 13))
    assert data["has_mos"] and data["rows"][0][5] == pytest.approx(df["mos"].iloc[0], abs=1e-6)
    for r in data["rows"]:
        src, w, h = data["thumbs"][r[7]][:3]
        assert src.startswith("data:image/jpeg;base64,") and max(w, h) <= 256
        assert r[6] == os.path.getsize(r[1])
        assert (w >= h) == (r[3] >= r[4]), "thumbnail has the photo's (EXIF-corrected) orientation"
    assert sorted(f[0] for f in data["failed"]) == sorted(three_failures(root / "photos"))
    assert 0 < data["threshold"] < 1


def test_missing_photo_gets_a_placeholder(shot, tmp_path):
    root, paths, df = shot
    table = df.copy()
    table.loc[2, "path"] = str(root / "photos" / "moved_away.jpg")
    table.to_csv(tmp_path / "s.csv", index=False)
    s = build_gallery(tmp_path / "s.csv", tmp_path / "g.html", progress=False)
    assert s["no_thumbnail"] == 1 and s["photos"] == 12
    data = page_data((tmp_path / "g.html").read_text(encoding="utf-8"))
    row = data["rows"][2]
    assert data["thumbs"][row[7]] == [None, 0, 0, "no such file"] and row[6] is None


def test_a_file_listed_twice_gets_one_thumbnail(shot, tmp_path):
    root, paths, df = shot
    link = tmp_path / "link.jpg"
    os.symlink(df["path"].iloc[0], link)
    table = pd.concat([df, df.iloc[[0]].assign(path=str(link), rank=13)], ignore_index=True)
    table.to_csv(tmp_path / "s.csv", index=False)
    s = build_gallery(tmp_path / "s.csv", tmp_path / "g.html", progress=False)
    assert s["photos"] == 13 and s["distinct"] == 12
    data = page_data((tmp_path / "g.html").read_text(encoding="utf-8"))
    assert data["rows"][0][7] == data["rows"][12][7] and len(data["thumbs"]) == 12


# ---- inline vs folder ------------------------------------------------------------------------


def test_auto_spills_to_a_folder_and_cleans_up(shot, tmp_path):
    root, _, _ = shot
    out = tmp_path / "g.html"
    folder = tmp_path / "g_thumbs"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")  # not ours: never touched
    (folder / ("0" * 20 + ".jpg")).write_bytes(b"stale")  # ours, from an earlier run: removed
    s = build_gallery(root / "scores.csv", out, inline_limit=20_000, progress=False)
    assert s["mode"] == "folder" and s["thumbs_dir"] == str(folder)
    data = page_data(out.read_text(encoding="utf-8"))
    names = [t[0] for t in data["thumbs"]]
    assert data["thumb_base"] == "g_thumbs/" and all(re.fullmatch(r"[0-9a-f]{20}\.jpg", n) for n in names)
    assert sorted(p.name for p in folder.iterdir()) == sorted(set(names) | {"notes.txt"})
    with Image.open(folder / names[0]) as im:
        assert im.format == "JPEG" and max(im.size) <= 256
    assert s["html_bytes"] < s["thumb_bytes"] / 3, "the page holds only the table"

    s2 = build_gallery(root / "scores.csv", out, mode="inline", progress=False)
    assert s2["mode"] == "inline" and sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    (folder / "notes.txt").unlink()
    build_gallery(root / "scores.csv", out, mode="folder", progress=False)
    build_gallery(root / "scores.csv", out, mode="inline", progress=False)
    assert not folder.exists(), "an emptied thumbnail folder goes too"


def test_auto_stays_inline_under_the_limit(shot, tmp_path):
    root, _, _ = shot
    s = build_gallery(root / "scores.csv", tmp_path / "g.html", progress=False)
    assert s["mode"] == "inline" and s["thumbs_dir"] is None and not (tmp_path / "g_thumbs").exists()
    assert s["html_bytes"] > s["thumb_bytes"] * 4 / 3, "the thumbnails are in the page, base64"


# ---- formats and bad input -------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_every_scores_format(shot, tmp_path, suffix):
    root, paths, _ = shot
    if suffix == ".parquet":
        pytest.importorskip("pyarrow", reason="parquet needs pyarrow; the no-pyarrow error is tested below")
    df = write_scores(paths, tmp_path / f"s{suffix}", failed={str(paths[0]): "x"})
    got = read_scores(tmp_path / f"s{suffix}")
    assert list(got["path"]) == list(df["path"]) and np.allclose(got["score"], df["score"])
    s = build_gallery(tmp_path / f"s{suffix}", tmp_path / "g.html", progress=False)
    assert s["photos"] == 12 and s["failed"] == 1, "the errors file is found beside any format"


def test_parquet_without_pyarrow_is_one_line(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__",
                        lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name == "pyarrow" else real(name, *a, **k))
    (tmp_path / "s.parquet").write_bytes(b"PAR1")
    with pytest.raises(DpiqaError, match="needs pyarrow"):
        read_scores(tmp_path / "s.parquet")


def test_relative_paths_odd_names_and_missing_rank(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("NA.jpg", "1e5.jpg"):
        Image.new("RGB", (40, 30), "red").save(tmp_path / "sub" / name)
    (tmp_path / "s.csv").write_text("path,score\nsub/NA.jpg,0.2\nsub/1e5.jpg,0.7\n")
    df = read_scores(tmp_path / "s.csv")
    assert list(df["path"]) == [str(tmp_path / "sub" / "1e5.jpg"), str(tmp_path / "sub" / "NA.jpg")]
    assert list(df["rank"]) == [1, 2] and df["width"].isna().all()
    s = build_gallery(tmp_path / "s.csv", tmp_path / "g.html", progress=False)
    assert s["no_thumbnail"] == 0


def test_explicit_errors_file_and_bad_inputs(shot, tmp_path):
    root, _, _ = shot
    (tmp_path / "e.csv").write_text("path,reason\n/x/a.jpg,no such file\n")
    s = build_gallery(root / "scores.csv", tmp_path / "g.html", errors=tmp_path / "e.csv", progress=False)
    assert s["failed"] == 1
    with pytest.raises(DpiqaError, match="errors file not found"):
        build_gallery(root / "scores.csv", tmp_path / "g.html", errors=tmp_path / "nope.csv", progress=False)
    (tmp_path / "bad.csv").write_text("file,value\na.jpg,1\n")
    with pytest.raises(DpiqaError, match="no path or score column"):
        build_gallery(tmp_path / "bad.csv", tmp_path / "g.html", progress=False)
    (tmp_path / "nan.csv").write_text("path,score\na.jpg,\n")
    with pytest.raises(DpiqaError, match="no valid score"):
        build_gallery(tmp_path / "nan.csv", tmp_path / "g.html", progress=False)
    with pytest.raises(DpiqaError, match="must end in .html"):
        build_gallery(root / "scores.csv", tmp_path / "g.txt", progress=False)
    with pytest.raises(DpiqaError, match="unknown gallery mode"):
        build_gallery(root / "scores.csv", tmp_path / "g.html", mode="zip", progress=False)


def test_only_failures(tmp_path):
    (tmp_path / "s.csv").write_text("rank,path,score,width,height\n")
    (tmp_path / "s.errors.csv").write_text("path,reason\n/x/a.jpg,no such file\n")
    s = build_gallery(tmp_path / "s.csv", tmp_path / "g.html", progress=False)
    assert s["photos"] == 0 and s["failed"] == 1


# ---- command line ------------------------------------------------------------------------------


def test_cli_gallery(shot, run_cli, tmp_path):
    root, _, _ = shot
    code, _, err = run_cli("gallery", root / "scores.csv", "--out", tmp_path / "g.html", "-j", "2")
    assert code == 0, err
    assert f"wrote {tmp_path / 'g.html'}" in err and "12 photos, 3 failed" in err
    code, _, err = run_cli("gallery", tmp_path / "missing.csv")
    assert code == 2 and err.strip() == f"error: scores file not found: {tmp_path / 'missing.csv'}"


def test_cli_score_gallery_shortcut(shot, run_cli, tmp_path):
    root, paths, _ = shot
    code, _, err = run_cli("score", paths[0], "-m", "tiny-student", "--gallery", tmp_path / "g.html")
    assert code == 2 and err.strip() == "error: --gallery needs --out: the gallery is made from the results file"
    (tmp_path / "bad.jpg").write_text("not a photo")
    code, _, err = run_cli("score", paths[0], paths[1], tmp_path / "bad.jpg", "-m", "tiny-student", "--device", "cpu",
                           "-j", "0", "-q", "-o", tmp_path / "s.csv", "--gallery", tmp_path / "g.html")
    assert code == 1, err  # one file failed: score's exit code is kept
    data = page_data((tmp_path / "g.html").read_text(encoding="utf-8"))
    assert len(data["rows"]) == 2 and [f[0] for f in data["failed"]] == [str(tmp_path / "bad.jpg")]


def test_no_mos_line_that_repeats_the_score(shot, tmp_path):
    """Older score files wrote a `mos` column equal to `score` for a model trained on synthetic labels: the
    card would read "MOS 0.989" under the 0.989 badge."""
    root, _, df = shot
    df.assign(mos=df["score"]).to_csv(tmp_path / "same.csv", index=False)
    build_gallery(tmp_path / "same.csv", tmp_path / "same.html", progress=False)
    assert not page_data((tmp_path / "same.html").read_text(encoding="utf-8"))["has_mos"]
    df.assign(mos=100 * df["score"]).to_csv(tmp_path / "koniq.csv", index=False)  # a MOS scale: shown
    build_gallery(tmp_path / "koniq.csv", tmp_path / "koniq.html", progress=False)
    assert page_data((tmp_path / "koniq.html").read_text(encoding="utf-8"))["has_mos"]


def test_progress_on_a_set_large_enough_for_workers(tmp_path, capsys):
    paths = make_photos(tmp_path / "photos", 30)
    write_scores(paths, tmp_path / "s.csv")
    s = build_gallery(tmp_path / "s.csv", tmp_path / "g.html", workers=0, progress=True)
    assert s["photos"] == 30 and "thumbnails 30/30" in capsys.readouterr().err
