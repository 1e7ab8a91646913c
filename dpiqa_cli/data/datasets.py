"""Dataset readers: each IQA dataset as distributed -> one common table.

Columns: path, id (relative to root: the id in split files), mos (in [0, 1], higher = better), mos_raw,
ref, split, and type/level where the dataset has them; df.attrs["scale"] and ["direction"] say how mos
came from the raw labels. Columns are picked by name, never position, and the nominal range widens to
the data (LIVE's DMOS runs a little past 100), so mos stays in [0, 1].
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import io

from dpiqa_cli.data.catalog import OFFICIAL, canonical
from dpiqa_cli.data.labels import label_scale, normalise
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.extras import require


# ---- helpers ----
def _need(root: Path, rel: str, what: str) -> Path:
    p = root / rel
    if not p.is_file():
        raise DpiqaError(f"{what}: {rel} not found in {root}")
    return p


def _col(df: pd.DataFrame, names, source) -> str:
    lower = {str(c).strip().lower(): c for c in df.columns}
    for n in names:
        if n.lower() in lower:
            return lower[n.lower()]
    raise DpiqaError(f"{source}: no column {' or '.join(names)} (found: {', '.join(map(str, df.columns))})")


def _mat_strings(a) -> list[str]:
    """A MATLAB cell array / char matrix from loadmat -> flat list of str."""
    a = np.asarray(a)
    if a.dtype.kind == "U":
        return [str(s).strip() for s in a.ravel()]
    out = []
    for e in a.ravel():
        while isinstance(e, np.ndarray) and e.dtype == object and e.size == 1:
            e = e.item()
        out.append(str(np.asarray(e).ravel()[0]).strip() if isinstance(e, np.ndarray) else str(e).strip())
    return out


def _loadmat(path: Path, key: str) -> np.ndarray:
    try:
        m = io.loadmat(str(path))
    except Exception as exc:  # noqa: BLE001 - scipy raises several types for a bad file
        raise DpiqaError(f"cannot read {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if key not in m:
        raise DpiqaError(f"{path}: no variable {key!r} (found: {', '.join(k for k in m if not k.startswith('__'))})")
    return m[key]


class _CaseFix:
    """Resolve rel paths case-insensitively when the exact one is absent (TID2013 mixes i/I, BMP/bmp)."""

    def __init__(self, root: Path):
        self.root, self.dirs = root, {}

    def __call__(self, rel: str) -> str:
        if (self.root / rel).exists():
            return rel
        parent, name = os.path.split(rel)
        if parent not in self.dirs:
            d = self.root / parent
            self.dirs[parent] = {n.lower(): n for n in os.listdir(d)} if d.is_dir() else {}
        real = self.dirs[parent].get(name.lower())
        return os.path.join(parent, real).replace(os.sep, "/") if real else rel


def _finish(key: str, root: Path, rel, mos_raw, ref=None, split=None, extra: dict | None = None,
            allow_missing: bool = False, source: str = "", scale=None, column: str | None = None) -> pd.DataFrame:
    rel = [str(r).replace("\\", "/") for r in rel]
    raw = pd.to_numeric(pd.Series(list(mos_raw)), errors="coerce").to_numpy(float)
    if len(raw) != len(rel):
        raise DpiqaError(f"{key}: {len(rel)} image names but {len(raw)} scores in {source}")
    if np.isnan(raw).any():
        raise DpiqaError(f"{source}: {int(np.isnan(raw).sum())} non-numeric score(s), first at row {int(np.argmax(np.isnan(raw)))}")
    fix = _CaseFix(root)
    rel = [fix(r) for r in rel]
    df = pd.DataFrame({"path": [os.path.abspath(root / r) for r in rel], "id": rel, "mos_raw": raw})
    df["ref"] = pd.Series(list(ref), dtype=object) if ref is not None else None
    df["split"] = pd.Series(list(split), dtype=object) if split is not None else None
    for k, v in (extra or {}).items():
        df[k] = list(v)
    lo, hi, lower_better = scale or (None, None, None)
    sc = label_scale(raw, column, key, lo, hi, lower_better)
    df["mos"] = normalise(raw, sc)
    exists = np.fromiter((os.path.isfile(p) for p in df["path"]), bool, len(df))
    if not exists.all():
        miss = df.loc[~exists, "id"].tolist()
        msg = f"{key}: {len(miss)} of {len(df)} images listed in {source} are missing under {root} " \
              f"(e.g. {', '.join(miss[:3])})"
        if not allow_missing:
            raise DpiqaError(msg + "; pass --allow-missing to skip them")
        warnings.warn(msg + "; skipped", stacklevel=3)
        df = df.loc[exists].reset_index(drop=True)
    df = df[["path", "id", "mos", "mos_raw", "ref", "split"] + [c for c in df.columns if c in (extra or {})]]
    df.attrs["scale"] = {k: sc[k] for k in ("name", "min", "max", "lower_better")}
    df.attrs["direction"] = sc["why"]
    df.attrs["missing"] = int((~exists).sum())
    return df


# ---- readers: each returns _finish(...) ----
def _koniq(root: Path, size: str | None = None, **kw):
    src = _need(root, "koniq10k_distributions_sets.csv", "KonIQ-10k")
    t = pd.read_csv(src)
    name, mos, st = _col(t, ["image_name"], src), _col(t, ["MOS"], src), _col(t, ["set"], src)
    folder = size or next((d for d in ("1024x768", "512x384") if (root / d).is_dir()), "1024x768")
    raw = pd.to_numeric(t[mos], errors="coerce")
    # the file may carry MOS on the 1-5 rating scale (c1..c5 are its vote counts) rather than 0-100
    scale = (1.0, 5.0, None) if raw.max() <= 5.0 and {"c1", "c5"} <= set(t.columns) else None
    split = [OFFICIAL.get(str(s).strip().lower()) for s in t[st]]
    return _finish("koniq", root, [f"{folder}/{n}" for n in t[name]], raw, None, split, source=src.name,
                   scale=scale, **kw)


def _clive(root: Path, **kw):
    names = _mat_strings(_loadmat(_need(root, "Data/AllImages_release.mat", "CLIVE"), "AllImages_release"))
    mos = np.asarray(_loadmat(_need(root, "Data/AllMOS_release.mat", "CLIVE"), "AllMOS_release"), float).ravel()
    if len(names) != len(mos):
        raise DpiqaError(f"CLIVE: {len(names)} names but {len(mos)} MOS values")
    keep = 7 if len(names) > 7 and all(n.lower().startswith("t") for n in names[:7]) else 0  # the 7 training images
    return _finish("clive", root, [f"Images/{n}" for n in names[keep:]], mos[keep:], source="Data/AllMOS_release.mat", **kw)


def _spaq(root: Path, **kw):
    src = _need(root, "Annotations/MOS and Image attribute scores.xlsx", "SPAQ")
    require("bench", f"reading SPAQ's {src.name}", ("openpyxl",))
    t = pd.read_excel(src, engine="openpyxl")
    return _finish("spaq", root, [f"TestImage/{n}" for n in t[_col(t, ["Image name", "image_name"], src)]],
                   t[_col(t, ["MOS"], src)], source=src.name, **kw)


def _livefb(root: Path, **kw):
    src = _need(root, "labels_image.csv", "LIVEFB")
    t = pd.read_csv(src)
    return _finish("livefb", root, [f"database/{n}" for n in t[_col(t, ["name"], src)]],
                   t[_col(t, ["mos"], src)], source=src.name, **kw)


LIVE_FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))


def _live(root: Path, **kw):
    dmos = np.asarray(_loadmat(_need(root, "dmos.mat", "LIVE"), "dmos"), float).ravel()
    orgs = np.asarray(_loadmat(root / "dmos.mat", "orgs"), float).ravel()
    refs = _mat_strings(_loadmat(_need(root, "refnames_all.mat", "LIVE"), "refnames_all"))
    rel, typ = [], []
    for folder, n in LIVE_FOLDERS:  # dmos.mat is ordered jp2k, jpeg, wn, gblur, fastfading; imgK.bmp in each
        info = root / folder / "info.txt"
        if info.is_file():  # its line count is the folder's image count (miniature copies differ from 982)
            n = sum(1 for line in info.read_text(errors="replace").splitlines() if line.strip())
        rel += [f"{folder}/img{i}.bmp" for i in range(1, n + 1)]
        typ += [folder] * n
    if not (len(rel) == len(dmos) == len(orgs) == len(refs)):
        raise DpiqaError(f"LIVE: {len(rel)} images in the folders' info.txt, {len(dmos)} dmos, {len(orgs)} orgs, "
                         f"{len(refs)} refnames; they must agree")
    keep = orgs != 1  # orgs == 1 marks the undistorted references
    return _finish("live", root, np.array(rel)[keep], dmos[keep], np.array(refs, dtype=object)[keep],
                   extra={"type": np.array(typ)[keep]}, source="dmos.mat", **kw)


CSIQ_TYPES = {"noise": ("awgn", "AWGN"), "awgn": ("awgn", "AWGN"), "jpeg": ("jpeg", "JPEG"),
              "jpeg 2000": ("jpeg2000", "jpeg2000"), "jpeg2000": ("jpeg2000", "jpeg2000"),
              "fnoise": ("fnoise", "fnoise"), "blur": ("blur", "BLUR"), "contrast": ("contrast", "contrast")}


def _csiq(root: Path, labels: str | None = None, **kw):
    xlsx = root / "csiq.DMOS.xlsx"
    if labels is None and xlsx.is_file():
        return _csiq_xlsx(root, xlsx, **kw)
    txt = root / labels if labels else next((root / n for n in ("csiq.txt", "csiq_label.txt", "dmos.txt")
                                             if (root / n).is_file()), None)
    if txt is None or not txt.is_file():
        raise DpiqaError(f"CSIQ: neither csiq.DMOS.xlsx nor a 'name dmos' list (csiq.txt) found in {root}")
    t = pd.read_csv(txt, sep=r"\s+", header=None, names=["name", "dmos"], engine="python")
    names = t["name"].astype(str)
    rel = [n if (root / n).exists() or n.startswith("dst_imgs/") else f"dst_imgs/{n}" for n in names]
    refs = [os.path.basename(n).split(".")[0] for n in names]
    return _finish("csiq", root, rel, t["dmos"], refs, source=txt.name, **kw)


def _csiq_xlsx(root: Path, src: Path, **kw):
    require("bench", f"reading CSIQ's {src.name}", ("openpyxl",))
    book = pd.read_excel(src, sheet_name=None, header=None, engine="openpyxl")
    for sheet in book.values():  # the DMOS sheet; its header row may sit below a title
        hits = [i for i in range(min(len(sheet), 10)) if "dmos" in {str(v).strip().lower() for v in sheet.iloc[i]}]
        if hits:
            t = sheet.iloc[hits[0] + 1:].set_axis([str(v).strip() for v in sheet.iloc[hits[0]]], axis=1)
            t = t.dropna(subset=[_col(t, ["dmos"], src)])
            break
    else:
        raise DpiqaError(f"{src}: no sheet with a 'dmos' column")
    img, typ, lev = (_col(t, ["image"], src), _col(t, ["dst_type"], src), _col(t, ["dst_lev"], src))
    rel = []
    for i, ty, lv in zip(t[img], t[typ], t[lev]):
        folder, tag = CSIQ_TYPES.get(str(ty).strip().lower(), (None, None))
        if folder is None:
            raise DpiqaError(f"{src}: unknown dst_type {ty!r}")
        rel.append(f"dst_imgs/{folder}/{i}.{tag}.{int(lv)}.png")
    return _finish("csiq", root, rel, t[_col(t, ["dmos"], src)], [str(i) for i in t[img]],
                   extra={"type": [str(x).strip() for x in t[typ]], "level": [int(x) for x in t[lev]]},
                   source=src.name, **kw)


def _tid2013(root: Path, **kw):
    src = _need(root, "mos_with_names.txt", "TID2013")
    t = pd.read_csv(src, sep=r"\s+", header=None, names=["mos", "name"], engine="python")
    names = t["name"].astype(str)
    m = names.str.extract(r"^[iI](\d+)_(\d+)_(\d+)", expand=True)
    if m.isna().any().any():
        raise DpiqaError(f"{src}: names must look like i01_01_1.bmp (e.g. {names[m.isna().any(axis=1)].iloc[0]!r})")
    return _finish("tid2013", root, [f"distorted_images/{n}" for n in names], t["mos"],
                   ["I" + r for r in m[0]], extra={"type": m[1].astype(int), "level": m[2].astype(int)},
                   source=src.name, **kw)


def _kadid(root: Path, **kw):
    src = _need(root, "dmos.csv", "KADID-10k")
    t = pd.read_csv(src)
    dist, ref = t[_col(t, ["dist_img"], src)].astype(str), t[_col(t, ["ref_img"], src)].astype(str)
    m = dist.str.extract(r"_(\d+)_(\d+)\.\w+$", expand=True)
    extra = {} if m.isna().any().any() else {"type": m[0].astype(int), "level": m[1].astype(int)}
    return _finish("kadid", root, [f"images/{n}" for n in dist], t[_col(t, ["dmos"], src)],
                   [os.path.splitext(r)[0] for r in ref], extra=extra, source=src.name, **kw)


def _csv(root: Path, csv: str | None = None, mos_min=None, mos_max=None, lower_better: bool | None = None, **kw):
    if root.is_file():
        root, csv = root.parent, root.name
    if csv is None:
        found = sorted(root.glob("*.csv"))
        if len(found) != 1:
            raise DpiqaError(f"csv dataset: {'no' if not found else 'more than one'} .csv file in {root}; name it")
        src = found[0]
    else:
        src = Path(csv) if Path(csv).is_absolute() else root / csv
        if not src.is_file():
            raise DpiqaError(f"csv dataset: {src} not found")
    t = pd.read_csv(src)
    pc, mc = _col(t, ["path"], src), _col(t, ["mos", "dmos"], src)  # dmos: lower is better, unless told
    lower = {str(c).lower(): c for c in t.columns}
    ref = t[lower["ref"]].astype(str) if "ref" in lower else None
    split = [OFFICIAL.get(str(s).strip().lower()) for s in t[lower["split"]]] if "split" in lower else None
    extra = {k: t[lower[k]] for k in ("type", "level") if k in lower}
    scale = (None if mos_min is None else float(mos_min), None if mos_max is None else float(mos_max),
             None if lower_better is None else bool(lower_better))
    df = _finish("csv", root, t[pc].astype(str), t[mc], ref, split, extra=extra, source=src.name, scale=scale,
                 column=str(mc), **kw)
    if (src.parent / "synth.json").is_file():  # made by `dpiqa synth`: MS-SSIM labels, not MOS (models.checkpoint_config)
        df.attrs["scale"]["name"] = "synth"
    return df


READERS = {"koniq": _koniq, "clive": _clive, "spaq": _spaq, "livefb": _livefb, "live": _live, "csiq": _csiq,
           "tid2013": _tid2013, "kadid": _kadid, "csv": _csv}


def read_dataset(name: str, root, allow_missing: bool = False, **opts) -> pd.DataFrame:
    """The common table of dataset `name` (aliases allowed) found under `root`."""
    key = canonical(name)
    root = Path(root).expanduser()
    if not root.exists():
        raise DpiqaError(f"dataset root not found: {root}")
    opts = {k: v for k, v in opts.items() if v is not None}
    try:
        return READERS[key](root.resolve() if root.is_dir() else root, allow_missing=allow_missing, **opts)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise DpiqaError(f"{key}: unsupported option ({str(exc).split('argument')[-1].strip()})") from None
        raise
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DpiqaError(f"{key}: cannot parse its label file under {root}: {str(exc).splitlines()[0]}") from None
