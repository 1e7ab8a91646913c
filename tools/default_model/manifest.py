"""The photos of the bundled default model: what each one is, where it comes from, and its split.

manifest.csv (next to this file) has one row per candidate photo, used or not. Candidates: every PNG/JPEG
wallpaper in the Debian packages below (outside `screenshot*` previews and LXQt's theme graphics under
usr/share/lxqt/themes), and the images that scikit-image, scikit-learn and matplotlib ship inside their
wheels (not the ones scikit-image downloads on demand, nor its tiny test fixtures). A wallpaper shipped in
several sizes or with a dark variant is one photo: the row names the largest file, the note the others.

Columns:
    photo         short unique id
    source        Debian `package=version` (exactly what `apt-get download` fetches), or scikit-image,
                  scikit-learn, matplotlib (the file as shipped in the installed wheel)
    file          path inside the package (Debian) or inside the Python package, with the loader
    sha256        of that file's bytes (for every source: the file, not the decoded pixels)
    width, height of that file
    licence, author   as stated by the package (Debian copyright files, plasma's metadata.json, LXQt's
                  wallpapers/License; skimage/data/_fetchers.py docstrings; sklearn's images/README.txt)
    photographic  yes / no (renders, paintings, gradients, graphics: no)
    kind          scene (a photo of a scene or object), texture, microscopy, fundus, astronomy; or for
                  non-photos render, painting, pattern, graphic
    downscale     the integer factor that makes the file free of its own JPEG artefacts (artefacts.py);
                  empty when none of 1, 2, 4 is enough
    split         train, val, test or excluded
    note          why a row is excluded, which variants were merged, what a doubtful image is

The split, fixed before any training and never changed after (`assign_splits` reproduces it from the
other columns; tests/test_default_model_tools.py checks that it still does). It was first drawn with 14
test and 8 val photos, then, before any model had been trained on it, with 12 and 6, so that four more
photos train:

1. Excluded by hand, with a note: non-photos; photos without a stated licence; photos that are not
   pristine (motion blur, out of focus); photos too compressed for the artefact rule (downscale empty);
   photos whose artefact-free size is under one 512x512 crop; scikit-image's astronaut, coffee, chelsea
   and clock, which examples/ shows, so they stay unseen.
2. Level photos (can be val or test): photographic scenes (kind `scene`) from the Debian packages whose
   artefact-free long side (long side / downscale) is at least LEVEL_LONG_SIDE, the size the level
   benchmark works at. Texture, microscopy, fundus and astronomy photos are never level photos.
3. The level photos are stratified by collection (lomiri: both lomiri packages; lxqt; plasma). TEST_PHOTOS
   and VAL_PHOTOS are shared out over the collections in proportion to their level photos (largest
   remainder; ties to the collection that comes first by name). Within a collection the photo ids are
   sorted, shuffled by numpy's default_rng([SEED, collection index]), and the first ones go to test, the
   next to val, the rest to train.
4. Every other usable row trains.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

MANIFEST = Path(__file__).resolve().parent / "manifest.csv"
COLUMNS = ("photo", "source", "file", "sha256", "width", "height", "licence", "author", "photographic",
           "kind", "downscale", "split", "note")
SPLITS = ("train", "val", "test", "excluded")
NATURAL_KINDS = ("scene",)
SEED = 0
TEST_PHOTOS, VAL_PHOTOS = 12, 6  # the issue asks >= 12 test photos; the rest train
LEVEL_LONG_SIDE = 1024
PYTHON_SOURCES = ("scikit-image", "scikit-learn", "matplotlib")


def load_manifest(path: str | Path = MANIFEST) -> dict[str, dict[str, str]]:
    """{photo: row} in file order; every value a string, as in the CSV."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames} != {list(COLUMNS)}")
        rows = {}
        for row in reader:
            if row["photo"] in rows:
                raise ValueError(f"{path}: photo id {row['photo']!r} appears twice")
            rows[row["photo"]] = row
    return rows


def photos_in(rows: dict[str, dict[str, str]], *splits: str) -> list[str]:
    """The photo ids of these splits, in manifest order."""
    return [p for p, r in rows.items() if r["split"] in splits]


def package_of(source: str) -> tuple[str, str] | None:
    """('package', 'version') of a Debian source, None for a Python package."""
    if source in PYTHON_SOURCES:
        return None
    name, _, version = source.partition("=")
    return name, version


def collection(source: str) -> str:
    """The stratum of a Debian source: lomiri, lxqt or plasma."""
    name = package_of(source)[0]
    return name.split("-")[0]


def artefact_free_long_side(row: dict[str, str]) -> int:
    return max(int(row["width"]), int(row["height"])) // int(row["downscale"]) if row["downscale"] else 0


def is_level_photo(row: dict[str, str]) -> bool:
    """Rule 2: may be a val or test photo."""
    return (row["split"] != "excluded" and row["photographic"] == "yes" and row["kind"] in NATURAL_KINDS
            and package_of(row["source"]) is not None and artefact_free_long_side(row) >= LEVEL_LONG_SIDE)


def _shares(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Largest-remainder apportionment of `total` over the strata, in proportion to `sizes`."""
    n = sum(sizes.values())
    quota = {k: total * v / n for k, v in sizes.items()}
    share = {k: int(q) for k, q in quota.items()}
    for k in sorted(quota, key=lambda k: (-(quota[k] - share[k]), k))[: total - sum(share.values())]:
        share[k] += 1
    return share


def assign_splits(rows: dict[str, dict[str, str]]) -> dict[str, str]:
    """{photo: split} by the rule in the module docstring; rows marked excluded stay excluded."""
    level = [p for p, r in rows.items() if is_level_photo(r)]
    if len(level) < TEST_PHOTOS + VAL_PHOTOS:
        raise ValueError(f"only {len(level)} level photos for {TEST_PHOTOS} test + {VAL_PHOTOS} val")
    strata: dict[str, list[str]] = {}
    for p in sorted(level):
        strata.setdefault(collection(rows[p]["source"]), []).append(p)
    names = sorted(strata)
    n_test = _shares({k: len(strata[k]) for k in names}, TEST_PHOTOS)
    n_val = _shares({k: len(strata[k]) for k in names}, VAL_PHOTOS)
    out = {p: ("excluded" if r["split"] == "excluded" else "train") for p, r in rows.items()}
    for i, name in enumerate(names):
        order = list(strata[name])
        np.random.default_rng([SEED, i]).shuffle(order)
        for j, p in enumerate(order):
            out[p] = "test" if j < n_test[name] else "val" if j < n_test[name] + n_val[name] else "train"
    return out
