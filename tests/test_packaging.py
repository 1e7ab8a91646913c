"""Every install carries the bundled model, and the package list names every package.

(CI also builds a wheel, installs it into a fresh virtual environment outside the checkout and scores the
examples with it: .ci/run.)
"""
from __future__ import annotations

import subprocess
import sys

import tomllib
from scoring_fixtures import ROOT

from dpiqa_cli.models.registry import BUNDLED_FILE, get_spec, weights_dir
from dpiqa_cli.scoring.graph_cache import shipped_check, shipped_graph


def test_the_package_list_names_every_package_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "dpiqa_cli").rglob("__init__.py")}
    assert (ROOT / "weights" / "__init__.py").is_file()  # a regular package: editable installs find it too
    assert listed == found | {"dpiqa_cli.weights"}
    assert config["package-dir"] == {"dpiqa_cli.weights": "weights"}  # the repository keeps weights/ at the top


def test_the_bundled_checkpoint_is_found_and_its_source_named():
    folder, where = weights_dir()
    assert (folder / BUNDLED_FILE).is_file() and where in ("installed package data", "source checkout")
    assert get_spec("student").default_weights == folder / BUNDLED_FILE


def test_weights_dir_can_be_pointed_elsewhere(tmp_path):
    code = ("from dpiqa_cli.models.registry import weights_dir, get_spec; print(weights_dir()[1]); "
            "print(get_spec('student').default_weights)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"DPIQA_WEIGHTS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["$DPIQA_WEIGHTS_DIR", str(tmp_path / BUNDLED_FILE)]


def test_help_and_version_do_not_import_torch():
    code = "import sys; from dpiqa_cli.cli import app; print('torch' in sys.modules, 'timm' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "False False", r.stdout + r.stderr


def test_the_committed_bundle_ships_the_onnx_graph_of_its_checkpoint():
    """The core install scores the bundled model on this graph, with no export and no torch: after a rebuild
    of the model, `python -m tools.bundle_graph` writes it, and both files are committed with the checkpoint."""
    ckpt = ROOT / "weights" / BUNDLED_FILE
    check = shipped_check(ckpt)
    assert check.usable, f"{shipped_graph(ckpt).name}: {check.problem or 'not there'}; run python -m tools.bundle_graph"
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "*.onnx" in config["dpiqa_cli.weights"] and "*.json" in config["dpiqa_cli.weights"]  # in every wheel
