"""Fetch the manifest's photos into a local cache and check every file against its sha256.

Debian photos: `apt-get download PACKAGE=VERSION` (run in CACHE/debs), `dpkg-deb -x` into a temporary
folder that is renamed to CACHE/debian/PACKAGE_VERSION only once complete (the .deb is then removed).
Python-package photos: the file as shipped in the installed wheel, copied to CACHE/python/SOURCE/. A file
whose sha256 differs from the manifest's is an error, never used; a cached, matching file is reused, so a
second call only hashes. Nothing here is committed to the repository: the photos stay in the cache.

    python -m tools.default_model.fetch [CACHE] [--splits train,val,test]

Default cache: $DPIQA_PHOTO_CACHE, else default-model-photos in dpiqa's user cache folder
(platformdirs; ~/.cache/dpiqa on Linux).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from platformdirs import user_cache_dir

from dpiqa_cli.atomic import write_via
from dpiqa_cli.errors import DpiqaError
from tools.default_model.manifest import load_manifest, package_of

DEFAULT_SPLITS = ("train", "val", "test")
# the versions the manifest's Python-package hashes were taken from (a later wheel may ship other bytes)
MADE_WITH = {"scikit-image": "0.26.0", "scikit-learn": "1.9.1", "matplotlib": "3.11.2"}
_MODULE = {"scikit-image": "skimage", "scikit-learn": "sklearn", "matplotlib": "matplotlib"}
_NOT_FOUND = ("Unable to locate package", "was not found", "Can't select", "has no installation candidate")


def default_cache() -> Path:
    env = os.environ.get("DPIQA_PHOTO_CACHE")
    return Path(env).expanduser() if env else Path(user_cache_dir("dpiqa", appauthor=False)) / "default-model-photos"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check(photo: str, path: Path, row: dict, fix: str) -> Path:
    if not path.is_file():
        raise DpiqaError(f"photo {photo}: {path} is missing ({fix})")
    got = sha256_of(path)
    if got != row["sha256"]:
        raise DpiqaError(f"photo {photo}: {path} has sha256 {got[:16]}..., the manifest says "
                         f"{row['sha256'][:16]}...; refusing to use it ({fix})")
    return path


def _unpacked_dir(cache: Path, package: str, version: str) -> Path:
    return cache / "debian" / f"{package}_{version.replace(':', '%3a')}"


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    if shutil.which(cmd[0]) is None:
        raise DpiqaError(f"{cmd[0]} not found: the Debian photos need apt-get and dpkg-deb (a Debian or Ubuntu system)")
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def _deb_fields(deb: Path) -> tuple[str, str]:
    r = _run(["dpkg-deb", "-f", str(deb), "Package", "Version"])
    fields = dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)
    return fields.get("Package", ""), fields.get("Version", "")


def _download(package: str, version: str, debs: Path) -> Path:
    debs.mkdir(parents=True, exist_ok=True)
    for old in debs.glob(f"{package}_*.deb"):  # left by an earlier, interrupted unpack
        if _deb_fields(old) == (package, version):
            return old
    r = _run(["apt-get", "download", f"{package}={version}"], cwd=debs)
    if r.returncode != 0:
        err = r.stderr.strip().splitlines()
        if any(s in r.stderr for s in _NOT_FOUND):
            raise DpiqaError(f"apt-get cannot find {package}={version}: run `apt-get update` (as root) and try again "
                             f"(it is in Debian 12 bookworm's main archive)")
        raise DpiqaError(f"apt-get download {package}={version} failed: {err[-1] if err else r.returncode}")
    for deb in debs.glob(f"{package}_*.deb"):
        if _deb_fields(deb) == (package, version):
            return deb
    raise DpiqaError(f"apt-get download {package}={version} left no matching .deb in {debs}")


def _unpack(package: str, version: str, cache: Path) -> Path:
    """CACHE/debian/PACKAGE_VERSION, downloading and unpacking the package unless it is there."""
    root = _unpacked_dir(cache, package, version)
    if root.is_dir():
        return root
    deb = _download(package, version, cache / "debs")
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    r = _run(["dpkg-deb", "-x", str(deb), str(partial)])
    if r.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise DpiqaError(f"dpkg-deb -x {deb.name} failed: {r.stderr.strip() or r.returncode}")
    os.replace(partial, root)
    deb.unlink()
    return root


def _installed_file(source: str, file: str) -> Path:
    """The shipped file of a Python-package row: `file` is 'module/path/name (loader)'."""
    rel = file.split(" (", 1)[0]
    top, _, rest = rel.partition("/")
    try:
        module = importlib.import_module(top)
    except ImportError:
        raise DpiqaError(f"the {source} photos need {source}: pip install -e '.[model]'") from None
    return Path(module.__file__).resolve().parent / rest


def _python_photo(photo: str, row: dict, cache: Path) -> Path:
    source = row["source"]
    dest = cache / "python" / source / Path(row["file"].split(" (", 1)[0]).name
    if not dest.exists():
        src = _installed_file(source, row["file"])
        version = getattr(importlib.import_module(_MODULE[source]), "__version__", "?")
        _check(photo, src, row, f"the installed {source} {version} ships other bytes than {source} "
                                f"{MADE_WITH[source]}, which the manifest was made with")
        write_via(dest, lambda tmp: shutil.copyfile(src, tmp))
    return _check(photo, dest, row, f"delete {dest} to export it again")


def fetch_photos(cache_dir: str | Path | None = None, splits=DEFAULT_SPLITS,
                 rows: dict[str, dict] | None = None) -> dict[str, Path]:
    """{photo: verified file} for every manifest row in `splits`, in manifest order."""
    rows = load_manifest() if rows is None else rows
    bad = set(splits) - {"train", "val", "test", "excluded"}
    if bad:
        raise DpiqaError(f"unknown split(s) {sorted(bad)}: use train, val, test or excluded")
    cache = Path(cache_dir) if cache_dir is not None else default_cache()
    wanted = [p for p, r in rows.items() if r["split"] in splits]
    out: dict[str, Path] = {}
    for photo in wanted:
        row = rows[photo]
        pkg = package_of(row["source"])
        if pkg is None:
            out[photo] = _python_photo(photo, row, cache)
        else:
            root = _unpack(*pkg, cache)
            out[photo] = _check(photo, root / row["file"], row, f"delete {root} to unpack {pkg[0]} again")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cache", nargs="?",
                    help="cache folder (default: $DPIQA_PHOTO_CACHE, else default-model-photos in the user "
                         "cache folder: ~/.cache/dpiqa on Linux)")
    ap.add_argument("--splits", default=",".join(DEFAULT_SPLITS), help="comma-separated (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        paths = fetch_photos(args.cache, splits=tuple(s.strip() for s in args.splits.split(",") if s.strip()))
    except DpiqaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    rows = load_manifest()
    counts = {}
    for p in paths:
        counts[rows[p]["split"]] = counts.get(rows[p]["split"], 0) + 1
    print(f"{len(paths)} photos verified in {args.cache or default_cache()}: "
          + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
