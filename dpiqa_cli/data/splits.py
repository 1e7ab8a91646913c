"""Train/val/test splits: seeded random by image (authentic) or by reference (synthetic), or the official one.

A split's ids are paths relative to the dataset root and are drawn from the sorted unique ids, so a saved
split replays anywhere and depends only on (seed, set of images).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from dpiqa_cli.atomic import write_json
from dpiqa_cli.data.catalog import canonical
from dpiqa_cli.errors import DpiqaError

PARTS = ("train", "val", "test")


def make_split(df: pd.DataFrame, seed: int, by_ref: bool, test_frac: float = 0.2, val_frac: float = 0.1) -> dict:
    """test_frac of the groups go to test, val_frac (carved from the rest) to val; test_frac 0 makes no test
    part. A seed's test part does not depend on val_frac."""
    if not (0 <= test_frac < 1 and 0 <= val_frac < 1 and test_frac + val_frac < 1):
        raise DpiqaError(f"bad split fractions: test {test_frac}, val {val_frac}")
    if by_ref:
        if "ref" not in df or df["ref"].isna().any():
            raise DpiqaError("a split by reference image needs a ref for every image")
        keys = df["ref"].astype(str).to_numpy()
    else:
        keys = df["id"].astype(str).to_numpy()
    groups = np.unique(keys)  # sorted
    if len(groups) < 3:
        raise DpiqaError(f"only {len(groups)} {'reference images' if by_ref else 'images'}: too few to split")
    perm = np.random.default_rng(int(seed)).permutation(len(groups))
    n_test = max(1, int(round(len(groups) * test_frac))) if test_frac > 0 else 0
    n_val = max(1, int(round(len(groups) * val_frac))) if val_frac > 0 else 0
    n_val = min(n_val, len(groups) - n_test - 1)  # keep at least one training group
    part = np.empty(len(groups), dtype=object)
    part[perm[:n_test]] = "test"
    part[perm[n_test:n_test + n_val]] = "val"
    part[perm[n_test + n_val:]] = "train"
    of_row = part[np.searchsorted(groups, keys)]
    ids = df["id"].astype(str).to_numpy()
    out = {p: sorted(ids[of_row == p].tolist()) for p in PARTS}
    out.update(seed=int(seed), by="ref" if by_ref else "image", test_frac=test_frac, val_frac=val_frac)
    return out


def official_split(df: pd.DataFrame) -> dict:
    """The dataset's own split (KonIQ's `set`: training/validation/test), in table order."""
    if "split" not in df or df["split"].isna().all():
        raise DpiqaError("this dataset has no official split; use --split seeds")
    norm = df["split"].map(lambda s: {"training": "train", "validation": "val"}.get(s, s))
    out = {p: df.loc[norm == p, "id"].astype(str).tolist() for p in PARTS}
    out.update(seed=None, by="official")
    return out


def save_split(split: dict, path) -> Path:
    write_json(path, split, indent=1)
    return Path(path)


def load_split(path) -> dict:
    try:
        split = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DpiqaError(f"cannot read split file {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(split, dict) or not all(isinstance(split.get(p), list) for p in PARTS):
        raise DpiqaError(f"{path}: a split file needs lists 'train', 'val' and 'test'")
    return split


# ---- what a checkpoint records of the images it was made with (its config's "split_images") ----
RECORD = "dpiqa-split-images/1"


def ids_sha256(ids) -> str:
    """A set of ids, hashed in sorted order: equal sets give equal hashes on any machine."""
    return hashlib.sha256("\n".join(sorted(map(str, ids))).encode()).hexdigest()


def split_record(split: dict, dataset: str, root=None, split_file=None) -> dict:
    """The images of each part of `split` (ids, count, sha256) and how it was made (seed, by, fractions,
    split file), so `bench` can tell which of a dataset's images the checkpoint has seen."""
    return {"format": RECORD, "dataset": canonical(dataset), "root": None if root is None else str(root),
            "split_file": None if split_file is None else str(split_file), "by": split.get("by"),
            "seed": split.get("seed"), "test_frac": split.get("test_frac"), "val_frac": split.get("val_frac"),
            "n": {p: len(split[p]) for p in PARTS}, "sha256": {p: ids_sha256(split[p]) for p in PARTS},
            "ids": {p: sorted(map(str, split[p])) for p in PARTS}}


def official_record(dataset: str, parts: dict, source: str, note: str | None = None) -> dict:
    """A record by the dataset's own split: `parts` maps train/val/test to official parts, e.g. the authors'
    KonIQ release {"train": ["train"], "val": [], "test": ["test"]}; the ids come from the table when read."""
    return {"format": RECORD, "dataset": canonical(dataset), "by": "official", "source": source,
            "official": {p: list(parts.get(p) or []) for p in PARTS}, **({"note": note} if note else {})}


def inherited_images(role: str, checkpoint, config: dict) -> dict:
    """What a checkpoint made from another one (its teacher, its starting weights) records of that one's images:
    its training and validation ids (a test part is not seen), or None when it records none."""
    rec = config.get("split_images")
    if rec is not None and "ids" in rec:
        rec = {**rec, "ids": {p: rec["ids"].get(p) or [] for p in ("train", "val")}}
    return {"from": role, "checkpoint": str(checkpoint), "dataset": config.get("dataset"), "record": rec}


def record_parts(record: dict, df: pd.DataFrame) -> dict:
    """{train, val, test: sorted ids} of a record; an official record reads them from the table's split column."""
    if "ids" in record:
        return {p: list(record["ids"].get(p) or []) for p in PARTS}
    if "official" not in record:
        raise DpiqaError(f"unreadable split_images record (format {record.get('format')})")
    if "split" not in df or df["split"].isna().all():
        raise DpiqaError(f"the checkpoint was trained on {record.get('dataset')}'s official split, but this table "
                         "has no split column")
    norm = df["split"].map(lambda s: {"training": "train", "validation": "val"}.get(s, s))
    return {p: sorted(df.loc[norm.isin(record["official"].get(p) or []), "id"].astype(str)) for p in PARTS}
