"""Train/val/test splits: seeded random by image (authentic) or by reference (synthetic), KonIQ's official one.

A split is {"train", "val", "test": [ids], "seed", "by", ...}: ids are the table's `id` column (paths relative
to the dataset root), so a saved split replays on any machine. Randomness is a numpy Generator over the
*sorted* unique ids/refs, so the split depends only on (seed, set of images), never on file order.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from dpiqa_cli.atomic import write_json
from dpiqa_cli.errors import DpiqaError

PARTS = ("train", "val", "test")


def make_split(df: pd.DataFrame, seed: int, by_ref: bool, test_frac: float = 0.2, val_frac: float = 0.1) -> dict:
    """test_frac of the groups go to test; val_frac of the groups (carved from the training part) to val.

    test_frac 0 makes no test part (a model whose test lies elsewhere, e.g. the bundled default's held-out
    photos); the test part of a seed is otherwise the same whatever val_frac is.
    """
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
