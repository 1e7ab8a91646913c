"""`dpiqa synth`: a KADID-style synthetic-distortion dataset made from a folder of pristine photos.

Writes OUT/refs/<ref>.png, OUT/images/<ref>_<type>_<level>.png (lossless PNG: the codec types carry exactly
their codec's artefacts), OUT/synth.csv (the generic CSV: path,mos,ref,type,level,fr,de, paths relative to
OUT) and OUT/synth.json + README.md. The labels and the per-reference type draw: docs/design.md,
"Synthetic data". Each random distortion has its own generator, seeded by (seed, reference, type, level),
so the output does not depend on the worker count or order.
"""
from __future__ import annotations

import json
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from dpiqa_cli.atomic import write_text, write_via
from dpiqa_cli.data import distortions as D
from dpiqa_cli.data.fr_quality import color_ms_ssim, tone_difference
from dpiqa_cli.data.images import IMAGE_EXTS, ImageError, load_rgb
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.progress import Progress

MIN_SIDE = 32  # below this MS-SSIM drops to very few scales and distortions lose meaning
CSV_NAME = "synth.csv"
TONE_DE = 30.0  # `tone` labels: the Delta E*ab at which a tone or colour shift halves the label
_FR = ("the colour MS-SSIM (0.8 Y + 0.1 Cb + 0.1 Cr, 5-scale MS-SSIM, Wang et al. 2003) of the distorted image "
       "against its pristine reference")
_IMAGE = ("running minimum over increasing level, within each (reference, type), of clip(2*fr - 1, 0, 1), "
          f"where fr is {_FR}")
LABEL_DEFINITIONS = {
    "image": f"mos = {_IMAGE}; pristine references: type 'pristine', level 0, mos 1.0. Higher is better.",
    "condition": "mos = running minimum over increasing level of clip(2*q - 1, 0, 1), where q(type, level) is the "
                 f"mean over all references of {_FR}; pristine references: type 'pristine', level 0, mos 1.0. "
                 "Higher is better.",
    "tone": "mos = running minimum over increasing level, within each (reference, type), of clip(2*fr - 1, 0, 1) / "
            "(1 + (de / 30)^2), where fr is " + _FR + " and de the mean CIE76 Delta E*ab between the two images' "
            "8 x 8-px block means (brightness, contrast and colour shifts); pristine references: type 'pristine', "
            "level 0, mos 1.0. Higher is better.",
    "mixed": "mos = 0.5 * m + 0.5 * mean(m over all references at the same (type, level)), where m is the "
             f"'image' label, the {_IMAGE}; pristine references: type 'pristine', level 0, mos 1.0. Higher is better.",
}


def list_sources(src_dir: str | os.PathLike) -> list[Path]:
    """The image files directly inside src_dir, sorted; one-line errors for unusable folders."""
    src = Path(src_dir)
    if not src.is_dir():
        raise DpiqaError(f"source folder not found: {src}")
    files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise DpiqaError(f"no images in {src} (looked for {', '.join(sorted(IMAGE_EXTS))})")
    stems = [p.stem for p in files]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise DpiqaError(f"two source images share the name {dup[0]!r} (output names come from file stems)")
    return files


def types_of_reference(names: list[str], ref: str, seed: int, per_ref: int | None, always: list[str]) -> list[str]:
    """The types one reference gets: all of `names`, or `always` plus per_ref - len(always) drawn from the rest
    (seeded by the reference's name, so independent of the other references), in `names` order."""
    if per_ref is None or per_ref >= len(names):
        return list(names)
    rest = [t for t in names if t not in always]
    drawn = np.random.default_rng([seed, zlib.crc32(ref.encode()), 1]).choice(len(rest), per_ref - len(always),
                                                                             replace=False)
    chosen = set(always) | {rest[i] for i in drawn}
    return [t for t in names if t in chosen]


def resolve_types(types) -> list[str]:
    """None -> every type; else a list (or comma-separated string) of known type names, in order given."""
    if types is None:
        return list(D.DISTORTIONS)
    if isinstance(types, str):
        types = [t for t in (s.strip() for s in types.split(",")) if t]
    unknown = [t for t in types if t not in D.DISTORTIONS]
    if unknown:
        raise DpiqaError(f"unknown distortion type {unknown[0]!r}; known: {', '.join(D.DISTORTIONS)}")
    if not types:
        raise DpiqaError("--types is empty")
    return list(dict.fromkeys(types))


def load_reference(path: Path, size: int | None) -> np.ndarray:
    """RGB uint8 array; with size, downscaled (Lanczos) so that the shorter side is `size` pixels."""
    try:
        img, _ = load_rgb(path, None)
    except ImageError as exc:
        raise DpiqaError(f"{path}: {exc}") from None
    w, h = img.size
    if size and min(w, h) > size:
        scale = size / min(w, h)
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.LANCZOS)
    if min(img.size) < MIN_SIDE:
        raise DpiqaError(f"{path}: {img.size[0]}x{img.size[1]} is too small (shorter side under {MIN_SIDE} px)")
    return np.asarray(img, dtype=np.uint8)


def _rng(seed: int, ref: str, dtype: str, level: int) -> np.random.Generator:
    # crc32 is stable across processes and Python versions (unlike hash())
    key = [seed, zlib.crc32(ref.encode()), zlib.crc32(dtype.encode()), level]
    return np.random.default_rng(np.random.SeedSequence(key))


def _save_png(arr: np.ndarray, path: Path) -> None:
    # compress_level 1: lossless all the same, several times faster to encode than the default
    write_via(path, lambda tmp: Image.fromarray(arr).save(tmp, format="PNG", compress_level=1))


def _work(task) -> list[tuple]:
    """One (reference, type): all its levels written and scored. Runs in a worker process."""
    src, out, dtype, seed, levels, size, max_strength = task
    ref = load_reference(Path(src), size)
    stem = Path(src).stem
    rows = []
    for level in range(1, levels + 1):
        img = D.apply(dtype, ref, level, levels, _rng(seed, stem, dtype, level), max_strength)
        rel = f"images/{stem}_{dtype}_{level}.png"
        _save_png(img, Path(out) / rel)
        rows.append((rel, f"refs/{stem}.png", dtype, level, color_ms_ssim(ref, img), tone_difference(ref, img)))
    return rows


def make_labels(df: pd.DataFrame, label: str = "image") -> pd.DataFrame:
    """Add `mos` to rows (ref, type, level, fr) by the label `label` (docs/design.md, "Synthetic data"); a copy."""
    df = df.copy()
    if label == "condition":
        q = df.groupby(["type", "level"])["fr"].mean()
        table = np.clip(2.0 * q - 1.0, 0.0, 1.0).rename("mos").reset_index().sort_values(["type", "level"])
        table["mos"] = table.groupby("type")["mos"].cummin()
        return df.merge(table, on=["type", "level"], how="left")
    df = df.sort_values(["ref", "type", "level"], kind="stable")
    df["mos"] = np.clip(2.0 * df["fr"] - 1.0, 0.0, 1.0)
    if label == "tone":
        df["mos"] = df["mos"] / (1.0 + (df["de"] / TONE_DE) ** 2)
    df["mos"] = df.groupby(["ref", "type"])["mos"].cummin()
    if label == "mixed":
        df["mos"] = 0.5 * df["mos"] + 0.5 * df.groupby(["type", "level"])["mos"].transform("mean")
    return df.sort_index()


def _readme(meta: dict, table: pd.DataFrame) -> str:
    sampled = f", {meta['per_ref']} per reference (always {', '.join(meta['always']) or 'none'})" if meta["per_ref"] else ""
    lines = ["# Synthetic-distortion dataset (made by `dpiqa synth`)", "",
             f"- references: {meta['n_refs']} (from `{meta['source']}`), size: {meta['size'] or 'original'}",
             f"- types: {len(meta['types'])} x {meta['levels']} levels up to strength {meta['max_strength']:g}"
             f"{sampled}, seed {meta['seed']}",
             f"- images: {meta['n_images']} (pristine references included)", "",
             f"## Label (`mos`, in [0, 1], higher = better; `{meta['label_kind']}` labels)", "", meta["label"], "",
             "See the docstring of `dpiqa_cli/data/synth.py` for the reasoning, and "
             "`dpiqa_cli/data/distortions.py` for each type's parameters.", "",
             "## mean mos by type and level", "",
             "| type | " + " | ".join(f"L{k}" for k in range(1, meta["levels"] + 1)) + " |",
             "|---|" + "---|" * meta["levels"]]
    for dtype, grp in table.groupby("type", sort=False):
        lines.append(f"| {dtype} | " + " | ".join(f"{v:.3f}" for v in grp.sort_values("level")["mos"]) + " |")
    return "\n".join(lines) + "\n"


def synthesize(src_dir, out_dir, seed: int = 0, levels: int = 5, types=None, size: int | None = None,
               workers: int | None = None, progress: bool = False, label: str = "image",
               per_ref: int | None = None, always=None, max_strength: float = 1.0) -> pd.DataFrame:
    """Distort every image in src_dir; write OUT_DIR (the layout above); return the CSV's frame."""
    if levels < 1 or levels > 20:
        raise DpiqaError(f"--levels must be between 1 and 20 (got {levels})")
    if not 0.0 < max_strength <= 3.0:
        raise DpiqaError(f"--max-strength must be above 0 and at most 3 (got {max_strength})")
    if size is not None and size < MIN_SIDE:
        raise DpiqaError(f"--size must be at least {MIN_SIDE} (got {size})")
    if workers is not None and workers < 0:
        raise DpiqaError("--workers must be 0 or more")
    if label not in LABEL_DEFINITIONS:
        raise DpiqaError(f"--label must be {' or '.join(LABEL_DEFINITIONS)} (got {label!r})")
    names = resolve_types(types)
    always = resolve_types(always) if always else []
    if not set(always) <= set(names):
        raise DpiqaError(f"--always {','.join(sorted(set(always) - set(names)))} not among --types")
    if per_ref is not None and not len(always) <= per_ref:
        raise DpiqaError(f"--per-ref must be at least the number of --always types ({len(always)}), got {per_ref}")
    if per_ref is not None and per_ref < 1:
        raise DpiqaError(f"--per-ref must be at least 1 (got {per_ref})")
    files = list_sources(src_dir)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DpiqaError(f"output path exists and is not a folder: {out}")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "refs").mkdir(exist_ok=True)

    for f in files:  # references first: also validates every source before the long part starts
        _save_png(load_reference(f, size), out / "refs" / f"{f.stem}.png")
    tasks = [(str(f), str(out), t, seed, levels, size, max_strength) for f in files
             for t in types_of_reference(names, f.stem, seed, per_ref, always)]
    workers = min(os.cpu_count() or 1, 4) if workers is None else workers
    bar = Progress(len(tasks) * levels, "synth", enabled=progress, every_s=30.0)
    rows: list[tuple] = []
    if workers <= 1:
        for task in tasks:
            rows += _work(task)
            bar.update(levels)
    else:  # spawn: safe even when the parent has started torch/OpenMP threads
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=get_context("spawn")) as pool:
            for part in pool.map(_work, tasks, chunksize=1):
                rows += part
                bar.update(levels)
    bar.close()

    df = make_labels(pd.DataFrame(rows, columns=["path", "ref", "type", "level", "fr", "de"]), label)
    pristine = pd.DataFrame({"path": [f"refs/{f.stem}.png" for f in files], "ref": [f"refs/{f.stem}.png" for f in files],
                             "type": "pristine", "level": 0, "fr": 1.0, "de": 0.0, "mos": 1.0})
    df = pd.concat([pristine, df], ignore_index=True)[["path", "mos", "ref", "type", "level", "fr", "de"]]
    order = {t: i for i, t in enumerate(["pristine"] + names)}
    df = df.sort_values(["ref", "type", "level"], key=lambda c: c.map(order) if c.name == "type" else c,
                        kind="stable").reset_index(drop=True)
    df["mos"] = df["mos"].round(6)
    df["fr"] = df["fr"].round(6)
    df["de"] = df["de"].round(4)

    used = [t for t in names if t in set(df["type"])]
    table = (df[df.type != "pristine"].groupby(["type", "level"])["mos"].mean().reset_index()
             .set_index("type").loc[used].reset_index())
    meta = {"source": str(Path(src_dir)), "seed": seed, "levels": levels, "max_strength": max_strength,
            "types": names, "size": size,
            "per_ref": per_ref, "always": always, "n_refs": len(files), "n_images": len(df),
            "label_kind": label, "label": LABEL_DEFINITIONS[label], "mos_range": [0.0, 1.0], "lower_better": False,
            "mean_mos_by_type_level": {t: g.sort_values("level")["mos"].round(6).tolist()
                                       for t, g in table.groupby("type", sort=False)}}
    write_via(out / CSV_NAME, lambda tmp: df.to_csv(tmp, index=False, float_format="%.6f"))
    write_text(out / "synth.json", json.dumps(meta, indent=2) + "\n")
    write_text(out / "README.md", _readme(meta, table))
    return df
