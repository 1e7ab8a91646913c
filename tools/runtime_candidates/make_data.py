"""Agreement set: 240 varied 512x512 uint8 crops from bundled photos (seed 0) + the repo's examples
decoded as `dpiqa score examples/` does (whole view, 512x512, draft). Writes data.npz."""
import io
import os
import sys
import warnings

import numpy as np
from PIL import Image, ImageFilter

warnings.filterwarnings("ignore")
S = 512
N = 240


def sources():
    import matplotlib
    import skimage.data as d
    from sklearn.datasets import load_sample_images

    out = {}
    for n in ["astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina", "rocket",
              "colorwheel", "brick", "camera", "grass", "gravel", "moon", "coins", "clock", "page", "text"]:
        out[n] = getattr(d, n)()
    left, right, _ = d.stereo_motorcycle()
    out["moto_l"], out["moto_r"] = left, right
    for i, im in enumerate(load_sample_images().images):
        out[f"sk{i}"] = im
    out["hopper"] = np.asarray(Image.open(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")))
    res = {}
    for k, a in out.items():
        img = Image.fromarray(a)
        res[k] = img.convert("RGB")
    return res


def distort(img, rng):
    kind = rng.choice(["none", "none", "blur", "noise", "jpeg", "jpeg", "bright", "blur+jpeg"])
    if "blur" in kind:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 5.0))))
    if kind == "noise":
        a = np.asarray(img).astype(np.float32) + rng.normal(0, rng.uniform(3, 45), (S, S, 3))
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if "jpeg" in kind:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(3, 60)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if kind == "bright":
        a = np.asarray(img).astype(np.float32) * rng.uniform(0.3, 1.6) + rng.uniform(-30, 30)
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return img, kind


def main(out="data.npz"):
    rng = np.random.default_rng(0)
    src = sources()
    keys = sorted(src)
    crops, kinds = [], []
    for i in range(N):
        k = keys[i % len(keys)]
        img = src[k]
        w, h = img.size
        # random scale: the short side between 512 and 1.6x its size (at least 512), then a random crop
        short = max(S, int(min(w, h) * rng.uniform(0.6, 1.6)))
        scale = short / min(w, h)
        img2 = img.resize((max(S, round(w * scale)), max(S, round(h * scale))), Image.BILINEAR)
        x0 = int(rng.integers(0, img2.size[0] - S + 1))
        y0 = int(rng.integers(0, img2.size[1] - S + 1))
        c = img2.crop((x0, y0, x0 + S, y0 + S))
        c, kind = distort(c, rng)
        crops.append(np.asarray(c, dtype=np.uint8))
        kinds.append(f"{k}:{kind}")
    from dpiqa_cli.data.views import View, decode_views

    ex_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")
    names = sorted(f for f in os.listdir(ex_dir) if f.lower().endswith((".jpg", ".png", ".jpeg")))
    ex = np.concatenate([decode_views(os.path.join(ex_dir, f), View("whole", S))[0] for f in names])
    np.savez(out, crops=np.stack(crops), kinds=np.array(kinds), examples=ex, example_names=np.array(names))
    np.save(os.path.join(os.path.dirname(out) or ".", "thr.npy"), np.stack(crops[:8]))  # bench_one's timing batch
    print(len(crops), "crops;", len(names), "examples:", names)


if __name__ == "__main__":
    main(*sys.argv[1:])
