"""The bad-input zoo: one folder, one run; good files scored, every bad one listed with its reason."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scoring_fixtures import PY, cli_env

from dpiqa_cli.data.images import ImageError, decode_image

NOBODY = 65534


def _can_drop_to_nobody() -> bool:
    if os.geteuid() != 0:
        return False
    try:
        # the interpreter itself must be reachable for that user (a venv under /root usually is not)
        return subprocess.run([PY, "-c", "import PIL"], preexec_fn=lambda: (os.setgid(NOBODY), os.setuid(NOBODY)),
                              capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _photo(w=120, h=80) -> Image.Image:
    rng = np.random.default_rng(1)
    return Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8))


def build_zoo(d) -> dict:
    """-> {file name: expected reason substring, or None for files that must be scored}."""
    photo = _photo()
    photo.save(d / "good.jpg", quality=90)
    photo.save(d / "ünïcødé_写真.jpg")
    photo.convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray((np.linspace(0, 65535, 80 * 120).reshape(80, 120)).astype(np.uint16)).save(d / "gray16.png")
    pal = photo.convert("P", palette=Image.ADAPTIVE, colors=16)
    pal.save(d / "palette_alpha.png", transparency=0)
    exif = photo.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    photo.save(d / "exif_rotated.jpg", exif=exif)
    (d / "zero.jpg").write_bytes(b"")
    data = (d / "good.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (d / "text.jpg").write_text("this is not a JPEG\n")
    Image.new("RGB", (1, 1), "red").save(d / "one_pixel.png")
    _photo(400, 300).save(d / "too_big.png")  # 120,000 px > --max-pixels 50,000
    _photo().save(d / "unreadable.jpg")
    os.chmod(d / "unreadable.jpg", 0)
    os.symlink(d / "gone.jpg", d / "broken_link.jpg")
    return {"good.jpg": None, "ünïcødé_写真.jpg": None, "cmyk.jpg": None, "gray16.png": None,
            "palette_alpha.png": None, "exif_rotated.jpg": None, "zero.jpg": "empty file",
            "truncated.jpg": "truncated", "text.jpg": "not an image", "one_pixel.png": "too small",
            "too_big.png": "too many pixels", "unreadable.jpg": "permission denied", "broken_link.jpg": "broken symlink"}


def test_bad_input_zoo():
    # The run happens as an unprivileged user when the tests run as root: root reads chmod-000 files,
    # so only a real user shows the permission error. Without that possibility, root's honest outcome
    # (the file is readable and scored) is what is asserted.
    drop = _can_drop_to_nobody()
    d = tempfile.mkdtemp(prefix="dpiqa-zoo-")
    try:
        os.chmod(d, 0o777)
        from pathlib import Path

        d = Path(d)
        expected = build_zoo(d)
        if os.geteuid() == 0 and not drop:
            expected["unreadable.jpg"] = None
        out = d / "scores.csv"
        kw = dict(preexec_fn=lambda: (os.setgid(NOBODY), os.setuid(NOBODY))) if drop else {}
        r = subprocess.run([PY, "-m", "dpiqa_cli", "score", str(d), "-m", "tiny-student", "--device", "cpu",
                            "--workers", "2", "--max-pixels", "50000", "-o", str(out)],
                           capture_output=True, text=True, env=cli_env(HOME=str(d)), timeout=300, **kw)
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr
        scored = pd.read_csv(out)
        errors = pd.read_csv(d / "scores.errors.csv")
        names = {os.path.basename(p): row for p, row in zip(scored["path"], scored.itertuples())}
        reasons = {os.path.basename(p): reason for p, reason in zip(errors["path"], errors["reason"])}
        assert set(names) | set(reasons) == set(expected)
        for name, want in expected.items():
            if want is None:
                assert name in names, f"{name} should be scored: {reasons.get(name)}"
            else:
                assert want in reasons.get(name, ""), f"{name}: {reasons.get(name)!r}"
                assert "\n" not in reasons[name]
        rot = names["exif_rotated.jpg"]
        assert (rot.width, rot.height) == (80, 120)  # stored 120x80, displayed upright as 80x120
        assert f"failed {sum(v is not None for v in expected.values())}" in r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_exif_rotation_and_alpha_and_16bit_values(tmp_path):
    a = np.zeros((40, 60, 3), np.uint8)
    a[:, 30:] = 255  # left half black, right half white
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(tmp_path / "r.jpg", exif=exif, quality=95)
    t, (w, h) = decode_image(tmp_path / "r.jpg", 32)
    assert (w, h) == (40, 60)
    assert t[:, :12].mean() < 0.1 and t[:, -12:].mean() > 0.9  # rotated clockwise: black on top

    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[:, :10] = (255, 0, 0, 255)  # opaque red left, fully transparent (black) right
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    t, _ = decode_image(tmp_path / "a.png", 20)
    assert t[:, :, -5:].min() == 1.0  # transparent -> white, not black
    assert t[0, :, :5].min() == 1.0 and t[1, :, :5].max() == 0.0

    g = np.full((16, 16), 32768, np.uint16)
    g[:, 8:] = 65535
    Image.fromarray(g).save(tmp_path / "g.png")
    t, _ = decode_image(tmp_path / "g.png", 16)
    assert abs(t[0, :, :4].mean().item() - 0.5) < 0.01 and t[0, :, -4:].min() == 1.0  # scaled, not clipped


def test_permission_error_is_one_line(tmp_path, monkeypatch):
    p = tmp_path / "x.jpg"
    _photo().save(p)

    def deny(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("dpiqa_cli.data.images.Image.open", deny)
    with pytest.raises(ImageError, match="^permission denied$"):
        decode_image(p, 32)


def test_the_docs_list_every_reason_the_code_writes():
    """docs/scoring.md's table of reasons and the code's templates (`data.reasons`) are the same set, and every
    reason of the zoo above comes from one of the templates."""
    import re
    from pathlib import Path

    from dpiqa_cli.data import reasons

    doc = (Path(__file__).resolve().parents[1] / "docs" / "scoring.md").read_text(encoding="utf-8")
    block = doc.split("<!-- reasons:begin -->")[1].split("<!-- reasons:end -->")[0]
    listed = [m.group(1) for m in re.finditer(r"^\| `([^`]+)` \|", block, re.M)]
    written = [re.sub(r"\{[^}]*\}", "…", t) for t in reasons.REASONS]
    assert sorted(listed) == sorted(written)
    assert len(set(reasons.REASONS)) == len(reasons.REASONS)


def reason_template(reason: str) -> str | None:
    """The template a written reason was made from, or None."""
    import re

    from dpiqa_cli.data import reasons

    for t in reasons.REASONS:
        parts = re.split(r"\{[^}]*\}", t)
        if re.fullmatch(".*?".join(map(re.escape, parts)), reason, re.S):
            return t
    return None


def test_every_reason_comes_from_a_template(tmp_path):
    from dpiqa_cli.data.images import load_rgb

    expected = build_zoo(tmp_path)
    png = tmp_path / "header.png"  # ends inside its header: Pillow says "Truncated File Read"
    Image.new("RGB", (64, 64)).save(png)
    png.write_bytes(png.read_bytes()[:20])
    os.mkdir(tmp_path / "folder.jpg")
    seen = {}
    for name in [*expected, "header.png", "folder.jpg", "gone.jpg"]:
        try:
            load_rgb(tmp_path / name, 32, max_pixels=50_000)
        except ImageError as exc:
            assert reason_template(str(exc)), str(exc)
            seen[name] = str(exc)
    assert seen["header.png"] == "truncated or corrupt image data (Truncated File Read)"
    assert seen["folder.jpg"] == "is a directory" and seen["gone.jpg"] == "no such file"
