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

The split was drawn three times, each time before any model was trained or tested on that draw, and a
draw is never changed after; `assign_splits` reproduces the latest from the other columns
(tools/tests/test_default_model_tools.py checks that it still does).

The first split (`first_split`), over the sources of FIRST_SOURCES (lomiri, lxqt, plasma and the Python
packages). It was first drawn with 14 test and 8 val photos, then, before any training, with 12 and 6:
1. Excluded by hand, with a note: non-photos; photos without a stated licence; photos that are not
   pristine (motion blur, out of focus); photos too compressed for the artefact rule (downscale empty);
   photos whose artefact-free size is under one 512x512 crop; scikit-image's astronaut, coffee, chelsea
   and clock, which examples/ shows, so they stay unseen.
2. Level photos (can be val or test): photographic scenes (kind `scene`) from the Debian packages whose
   artefact-free long side (long side / downscale) is at least LEVEL_LONG_SIDE, the size the level
   benchmark works at. Texture, microscopy, fundus and astronomy photos are never level photos.
3. The level photos are stratified by collection (lomiri: both lomiri packages; lxqt; plasma). 12 test and
   6 val photos are shared out over the collections in proportion to their level photos (largest
   remainder; ties to the collection that comes first by name). Within a collection the photo ids are
   sorted, shuffled by numpy's default_rng([SEED, collection index]), and the first ones go to test, the
   next to val, the rest to train.
4. Every other usable row trains.
Builds up to the one that added the second split chose on that val split and tested on that test split,
so its test photos are spent.

The second split, when the packages after FIRST_SOURCES were added (found by searching Debian's package
lists for openly licensed photographs; `mate-backgrounds` is never a candidate, it is kept for outside
checks):
5. The first split's train photos still train. Its val and test photos become val photos: they are
   camera-size files (2000 to 6000 px), which the size and noise checks of the val choice need, and a
   spent test photo may still make choices.
6. Excluded by hand as in 1, and also near-duplicates (one shot of a series kept) and packages that do
   not say which licence covers which file.
7. The new sources' level photos (rule 2), stratified by collection (endless-sky, other), shared out as
   in rule 3 by numpy's default_rng([SEED2, collection index]): TEST_PHOTOS fresh test photos, then
   NEW_VAL_PHOTOS val photos, the rest train.
8. Every other usable new row trains.
The builds up to and including the bundled multiscale default chose on that val split and tested on that
test split, so its test photos are spent too.

The third split, with no new source:
9. The second split's test photos train.
10. THIRD_TEST fresh test photos are drawn from the level photos (rule 2) that the second split trains,
   stratified by collection (lomiri, lxqt, plasma, endless-sky, other) and shared out as in rule 3 by
   numpy's default_rng([SEED3, collection index]). Earlier models trained on them, but no one has scored
   them as test, and a build from this split never trains on them. Val is unchanged.
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
SEED, SEED2, SEED3 = 0, 1, 2
FIRST_TEST, FIRST_VAL = 12, 6
TEST_PHOTOS, NEW_VAL_PHOTOS, THIRD_TEST = 12, 12, 12
FIRST_SOURCES = ("lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "lxqt-themes", "plasma-workspace-wallpapers")
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


def is_first(source: str) -> bool:
    """A source of the first split (rules 1-4)."""
    pkg = package_of(source)
    return pkg is None or pkg[0] in FIRST_SOURCES


def collection(source: str) -> str:
    """The stratum of a Debian source: lomiri, lxqt or plasma (first sources); endless-sky or other."""
    name = package_of(source)[0]
    if name in FIRST_SOURCES:
        return name.split("-")[0]
    return "endless-sky" if name.startswith("endless-sky") else "other"


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


def _draw(rows: dict[str, dict[str, str]], level: list[str], seed: int, n_test: int, n_val: int) -> dict[str, str]:
    """Rule 3: {photo: test | val | train} for these level photos, stratified by collection."""
    if len(level) < n_test + n_val:
        raise ValueError(f"only {len(level)} level photos for {n_test} test + {n_val} val")
    strata: dict[str, list[str]] = {}
    for p in sorted(level):
        strata.setdefault(collection(rows[p]["source"]), []).append(p)
    names = sorted(strata)
    tests = _shares({k: len(strata[k]) for k in names}, n_test)
    vals = _shares({k: len(strata[k]) for k in names}, n_val)
    out = {}
    for i, name in enumerate(names):
        order = list(strata[name])
        np.random.default_rng([seed, i]).shuffle(order)
        for j, p in enumerate(order):
            out[p] = "test" if j < tests[name] else "val" if j < tests[name] + vals[name] else "train"
    return out


def first_split(rows: dict[str, dict[str, str]]) -> dict[str, str]:
    """Rules 1-4 over the first sources' rows."""
    first = {p: r for p, r in rows.items() if is_first(r["source"])}
    out = {p: ("excluded" if r["split"] == "excluded" else "train") for p, r in first.items()}
    out.update(_draw(first, [p for p, r in first.items() if is_level_photo(r)], SEED, FIRST_TEST, FIRST_VAL))
    return out


def second_split(rows: dict[str, dict[str, str]]) -> dict[str, str]:
    """Rules 5-8: the first split, then the new sources' rows."""
    out = {p: ("val" if s in ("val", "test") else s) for p, s in first_split(rows).items()}
    new = {p: r for p, r in rows.items() if not is_first(r["source"])}
    out.update({p: ("excluded" if r["split"] == "excluded" else "train") for p, r in new.items()})
    out.update(_draw(new, [p for p, r in new.items() if is_level_photo(r)], SEED2, TEST_PHOTOS, NEW_VAL_PHOTOS))
    return {p: out[p] for p in rows}


def assign_splits(rows: dict[str, dict[str, str]]) -> dict[str, str]:
    """{photo: split} by the rules in the module docstring; rows marked excluded stay excluded."""
    second = second_split(rows)
    out = {p: ("train" if s == "test" else s) for p, s in second.items()}  # rule 9
    trained = {p: rows[p] for p, s in second.items() if s == "train"}
    out.update(_draw(trained, [p for p, r in trained.items() if is_level_photo(r)], SEED3, THIRD_TEST, 0))
    return out
