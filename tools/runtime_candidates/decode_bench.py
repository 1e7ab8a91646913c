"""Decode costs with Pillow (one thread): 1024x768 q90 full / draft, 4000x3000 q90 with draft to ~1024 px,
cutting 4 crops of 512 and turning them into a float N x 3 x 512 x 512 batch. Medians over ROUNDS rounds.

usage: python decode_bench.py make | run ROUNDS
"""
import glob
import os
import sys
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
J = os.path.join(HERE, "jpegs")


def make():
    import make_data as md

    os.makedirs(J, exist_ok=True)
    rng = np.random.default_rng(3)
    src = md.sources()
    colour = [k for k in sorted(src) if np.asarray(src[k]).std(axis=2).mean() > 1]
    for i, k in enumerate(colour * 2):
        img = src[k].resize((1024, 768), Image.BICUBIC)
        a = np.asarray(img).astype(np.float32) + rng.normal(0, 2.0, (768, 1024, 3))  # sensor-like grain
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(f"{J}/p{i:02d}.jpg", quality=90)
    for i, k in enumerate(["retina", "hubble_deep_field", "astronaut"]):
        img = src[k].resize((4000, 3000), Image.BICUBIC)
        a = np.asarray(img).astype(np.float32) + rng.normal(0, 3.0, (3000, 4000, 3))
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(f"{J}/big{i}.jpg", quality=90)
    for f in sorted(glob.glob(f"{J}/*.jpg")):
        print(os.path.basename(f), Image.open(f).size, os.path.getsize(f) // 1024, "KiB")


def crops4(a):
    """4 crops of 512 from a 1024x768 array: 2 columns x 2 rows (rows 0 and 256, overlapping)."""
    return np.stack([a[y:y + 512, x:x + 512] for y in (0, 256) for x in (0, 512)])


def to_float(c):
    return np.ascontiguousarray(c.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)


def t_ms(fn, files, reps=1):
    t = time.perf_counter()
    for _ in range(reps):
        for f in files:
            fn(f)
    return (time.perf_counter() - t) / (reps * len(files)) * 1000


def dec_full(f):
    with Image.open(f) as im:
        return np.asarray(im.convert("RGB"))


def dec_draft_1024(f):  # what a crop view would ask for: the largest DCT scale still >= 1024 x 768
    with Image.open(f) as im:
        im.draft("RGB", (1024, 768))
        im = im.convert("RGB")
        return np.asarray(im.resize((1024, 768), Image.BILINEAR) if im.size != (1024, 768) else im)


def dec_draft_quarter(f):  # 1/4 DCT scale (1000 x 750 from 4000 x 3000), then a small resize to 1024 x 768
    with Image.open(f) as im:
        im.draft("RGB", (im.size[0] // 4, im.size[1] // 4))
        im = im.convert("RGB")
        return np.asarray(im.resize((1024, 768), Image.BILINEAR))


def dec_draft_1024_size(f):
    with Image.open(f) as im:
        im.draft("RGB", (1024, 768))
        return im.size


def run(rounds):
    small = sorted(glob.glob(f"{J}/p*.jpg"))
    big = sorted(glob.glob(f"{J}/big*.jpg"))
    a = dec_full(small[0])
    res = {}
    for r in range(rounds):
        cells = {
            "1024x768 full decode": lambda: t_ms(dec_full, small, 2),
            "1024x768 draft(1024x768) (no DCT scale applies)": lambda: t_ms(dec_draft_1024, small, 2),
            "4000x3000 full decode": lambda: t_ms(dec_full, big, 1),
            "4000x3000 draft(1024x768) -> 2000x1500 + resize": lambda: t_ms(dec_draft_1024, big, 2),
            "4000x3000 draft 1/4 -> 1000x750 + resize": lambda: t_ms(dec_draft_quarter, big, 2),
            "cut 4 crops (uint8 copy)": lambda: t_ms(lambda _: crops4(a), range(50)),
            "4 crops -> float NCHW /255": lambda: t_ms(lambda _: to_float(crops4(a)), range(20)),
        }
        for k, fn in cells.items():
            res.setdefault(k, []).append(fn())
        print("round", r, os.getloadavg()[0], {k: round(v[-1], 2) for k, v in res.items()}, flush=True)
    print("draft(1024x768) of 4000x3000 gives", dec_draft_1024_size(big[0]))
    for k, v in res.items():
        print(f"| {k} | {np.median(v):.2f} ms | {min(v):.2f}-{max(v):.2f} |")


if __name__ == "__main__":
    make() if sys.argv[1] == "make" else run(int(sys.argv[2]))
