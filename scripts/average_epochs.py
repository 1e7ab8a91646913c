"""Write uniform weight averages of a run's last K epochs (RUN/avg-last-K.safetensors), as candidates
for scripts/pick_epoch.py beside the single epochs.

Why: on the 2-core build the validation score moves a lot from one epoch to the next (e.g. 0.91, 0.88,
0.77, 0.93 over the last four epochs of one seed), and the held-out numbers move between seeds. Averaging
the weights of the last epochs (as in SWA) is the cheapest way to damp that; the choice between averaged
and single epochs is still made on the validation photos alone.

    python scripts/average_epochs.py RUN --last 2 3 4
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dpiqa_cli.models.checkpoint import average_checkpoints, save_checkpoint  # noqa: E402


def epoch_files(run: Path) -> list[Path]:
    """RUN/epoch-N.safetensors in epoch order."""
    found = [(int(m.group(1)), p) for p in run.glob("epoch-*.safetensors") if (m := re.fullmatch(r"epoch-(\d+)", p.stem))]
    return [p for _, p in sorted(found)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a run folder with epoch-N.safetensors files (dpiqa distill --keep-epochs)")
    ap.add_argument("--last", type=int, nargs="+", default=[2, 3, 4], help="how many final epochs to average")
    args = ap.parse_args(argv)
    epochs = epoch_files(args.run)
    for k in args.last:
        if not 2 <= k <= len(epochs):
            sys.exit(f"error: --last {k} needs 2..{len(epochs)} epochs; {args.run} has {len(epochs)}")
        model, config = average_checkpoints(epochs[-k:])
        print(save_checkpoint(model, args.run / f"avg-last-{k}.safetensors", spec_name=config["model"], info=config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
