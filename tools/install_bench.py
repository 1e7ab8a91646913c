"""Install time and size of README's two commands, each in a fresh venv with pip's cache off (as a new
user, whose pip has nothing cached), and the size of the wheel; writes the table into BENCHMARKS.md between
`<!-- install-size:begin -->` and `<!-- install-size:end -->` unless --no-write.

    python -m tools.install_bench            # both (the test install takes several minutes and ~3 GB of disk)
    python -m tools.install_bench --core     # the core alone (printed, BENCHMARKS.md left as it is)

- core: `pip install <wheel>` of this checkout, the wheel built first (what `pip install dpiqa` installs; the
  README's `pip install -e .` from a clone installs the same packages);
- tests: `pip install torch==2.13.0 torchvision==0.28.0 && pip install -e ".[test,train,ray]"`.
Times are wall seconds of the pip commands (downloads included: they depend on the network); sizes are
`du -sm` of the venv's site-packages. Measure on a quiet machine.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.doc_blocks import publish

ROOT = Path(__file__).resolve().parents[1]
TORCH = ["torch==2.13.0", "torchvision==0.28.0"]


def _site_mb(venv: Path) -> int:
    site = next((venv / "lib").glob("python3*/site-packages"))
    return int(subprocess.run(["du", "-sm", str(site)], capture_output=True, text=True, check=True).stdout.split()[0])


def _timed_install(venv: Path, *commands: list[str]) -> float:
    """Seconds the pip commands take in `venv` (made fresh, its own pip upgraded first and not counted)."""
    # a new user's environment: nothing of this checkout on the path (its dpiqa.egg-info would count as installed)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_NO_CACHE_DIR"] = "1"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    pip = [str(venv / "bin" / "pip"), "-q"]  # not `python -m pip`, which would see this checkout from the cwd
    subprocess.run(pip + ["install", "--upgrade", "pip"], check=True, env=env)
    t0 = time.perf_counter()
    for args in commands:
        subprocess.run(pip + args, check=True, cwd=ROOT, env=env)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", action="store_true", help="measure the core install only")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "src"  # built from a copy: a build in the checkout leaves build/ and egg-info behind
        shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                                                 "__pycache__", "runs", "tmp", "ci-artifacts"))
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(src)],
                       check=True)
        wheel = next((tmp / "dist").glob("dpiqa-*.whl"))
        wheel_mb = wheel.stat().st_size / 2**20
        s = _timed_install(tmp / "core", ["install", str(wheel)])
        rows.append(("core: `pip install dpiqa` (the wheel)", s, _site_mb(tmp / "core")))
        if not args.core:
            s = _timed_install(tmp / "tests", ["install", *TORCH], ["install", "-e", ".[test,train,ray]"])
            rows.append(('tests: `pip install torch==2.13.0 torchvision==0.28.0 && pip install -e ".[test,train,ray]"`',
                         s, _site_mb(tmp / "tests")))
    lines = [f"Measured {time.strftime('%Y-%m-%d')} by `python -m tools.install_bench{' --core' if args.core else ''}` "
             f"({os.cpu_count()} cores, pip's cache off, downloads from the package index included); the wheel "
             f"weighs {wheel_mb:.1f} MB.", "", "| install | time | site-packages |", "|---|---:|---:|"]
    lines += [f"| {what} | {s:.0f} s | {mb} MB |" for what, s, mb in rows]
    publish("\n".join(lines) + "\n", "install-size", write=not (args.no_write or args.core))
    return 0


if __name__ == "__main__":
    sys.exit(main())
