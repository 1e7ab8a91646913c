"""What a label column means: its direction (MOS, higher is better, or DMOS, lower is better) and its scale,
and the normalised MOS in [0, 1], higher is better, that training targets and every correlation use.

The direction comes from the dataset's catalog entry when the dataset is known (a reader's, or a label file
recognised by its columns, such as KADID-10k's `dmos.csv`), else from the column's name: a `dmos` column is
lower-is-better. The catalog wins: KADID's `dmos` is higher-is-better despite its name.
"""
from __future__ import annotations

import numpy as np

from dpiqa_cli.data.catalog import INFO

LOWER_BETTER_COLUMNS = ("dmos",)  # differential MOS: the score of the distortion, not of the quality
# Label files of catalog datasets, recognised by columns that together name them.
LABEL_FILES = {"kadid": ("dist_img", "ref_img", "dmos"), "koniq": ("image_name", "mos", "set", "c1", "c5")}


def file_dataset(columns) -> str | None:
    """The catalog dataset whose label file has these columns, or None."""
    have = {str(c).strip().lower() for c in columns}
    return next((name for name, cols in LABEL_FILES.items() if set(cols) <= have), None)


def direction(column: str | None, dataset: str | None = None, lower_better: bool | None = None) -> tuple[bool, str]:
    """(lower_better, why): an explicit choice, else the catalog entry of `dataset`, else the column's name."""
    if lower_better is not None:
        return bool(lower_better), "set by --lower-better" if lower_better else "set explicitly"
    if dataset is not None and dataset in INFO and dataset != "csv":
        return bool(INFO[dataset].scale[2]), f"the {dataset} catalog entry"
    name = str(column or "").strip().lower()
    if name in LOWER_BETTER_COLUMNS:
        return True, f"column name {column!r} (DMOS)"
    return False, f"column name {column!r}" if column else "default (MOS)"


def label_scale(raw, column: str | None = None, dataset: str | None = None, lo=None, hi=None,
                lower_better: bool | None = None) -> dict:
    """{name, min, max, lower_better, why}: the nominal range widened to the data (`lo`/`hi` None: the data's),
    so the normalised MOS always stays inside [0, 1]."""
    lb, why = direction(column, dataset, lower_better)
    if dataset in INFO and dataset != "csv":
        n_lo, n_hi, _ = INFO[dataset].scale
        lo = n_lo if lo is None else lo
        hi = n_hi if hi is None else hi
    values = np.asarray(raw, dtype=float)
    values = values[np.isfinite(values)]
    if values.size:
        lo = values.min() if lo is None else min(float(lo), values.min())
        hi = values.max() if hi is None else max(float(hi), values.max())
    lo, hi = (0.0 if lo is None else float(lo)), (1.0 if hi is None else float(hi))  # no data: any range
    return {"name": dataset or "csv", "min": lo, "max": hi, "lower_better": lb, "why": why}


def normalise(raw, scale: dict):
    """Raw labels (a numpy array or Series) -> MOS in [0, 1], higher is better."""
    lo, hi = scale["min"], scale["max"]
    mos = (raw - lo) / ((hi - lo) or 1.0)
    return 1.0 - mos if scale["lower_better"] else mos


def direction_text(scale: dict | None) -> str | None:
    """The report's line on the direction used, or None when unknown."""
    if not scale or scale.get("lower_better") is None:
        return None
    why = f" ({scale['why']})" if scale.get("why") else ""
    if scale["lower_better"]:
        return f"labels are lower-is-better{why}: flipped to higher-is-better before every correlation"
    return f"labels are higher-is-better{why}: used as they are"
