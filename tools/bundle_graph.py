"""Write the ONNX graph that ships beside a bundled checkpoint: `x.graph.onnx` and `x.graph.json` beside
`x.safetensors`, so that `pip install dpiqa` (no torch) scores the bundled model with no export step, and
every install scores it on this same graph.

    python -m tools.bundle_graph                         # weights/dpiqa-student-lite0-synth.safetensors
    python -m tools.bundle_graph path/to/x.safetensors

The graph is what `dpiqa export` writes for the checkpoint, which is what the CPU runtime's cache would
hold (the export is deterministic); its .json names the checkpoint's sha256, view, MOS scale and dataset,
which the scorer checks before it uses the graph (dpiqa_cli/scoring/graph_cache.py). The model build runs
this after bundling a new checkpoint (tools/default_model/build.py, step 8); commit the two files with it.
Needs torch (the export); fails if the wheel's weights would pass what a package registry accepts.
"""
from __future__ import annotations

import argparse
import sys
import zlib
from importlib.metadata import version
from pathlib import Path

from dpiqa_cli.atomic import write_json
from dpiqa_cli.models.registry import BUNDLED_FILE
from dpiqa_cli.scoring.graph_cache import shipped_check, shipped_graph
from dpiqa_cli.scoring.onnx_graph import export_onnx

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "weights" / BUNDLED_FILE
MAX_WHEEL_MB = 95  # PyPI refuses files over 100 MB; the rest of the wheel is well under 1 MB


def deflated_mb(path: Path, chunk: int = 1 << 24) -> float:
    """The file's size in a wheel: wheels are zip files, deflated at zlib's default level."""
    z, n = zlib.compressobj(6), 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            n += len(z.compress(block))
    return (n + len(z.flush())) / 2**20


def bundle_graph(ckpt: Path = DEFAULT) -> Path:
    """Export `ckpt` to its shipped graph; returns the .onnx path."""
    ckpt = Path(ckpt)
    graph = shipped_graph(ckpt)
    config = export_onnx(weights=ckpt, model=None, out=graph)
    config["source"] = ckpt.name  # no paths of this machine in a shipped file
    config["exported_with"] = {p: version(p) for p in ("torch", "onnx", "onnxruntime")}
    write_json(graph.with_suffix(".json"), config)
    check = shipped_check(ckpt)
    if not check.usable:  # the scorer would refuse it
        raise SystemExit(f"error: {graph} does not stand for {ckpt.name}: {check.problem or 'not written'}")
    return graph


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", nargs="?", type=Path, default=DEFAULT, help="default: %(default)s")
    args = ap.parse_args(argv)
    graph = bundle_graph(args.checkpoint)
    mb = {p.name: deflated_mb(p) for p in (args.checkpoint, graph)}
    print(f"wrote {graph} ({graph.stat().st_size / 2**20:.1f} MB) and {graph.with_suffix('.json').name}; in a wheel: "
          + ", ".join(f"{k} {v:.1f} MB" for k, v in mb.items()), file=sys.stderr)
    if sum(mb.values()) > MAX_WHEEL_MB:
        print(f"error: the checkpoint and its graph take {sum(mb.values()):.1f} MB in a wheel, over {MAX_WHEEL_MB} MB",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
