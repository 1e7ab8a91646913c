"""Choose the bundled model among a run's per-epoch checkpoints, on the VALIDATION photos only.

`dpiqa distill` picks its best.safetensors by SRCC over all validation images against the synth labels,
which mixes the 19 types' calibration with what users need. The acceptance test asks something narrower:
per photo, are blur, noise and JPEG levels ranked in order, and does the pristine photo beat its level-3
copy? This script asks exactly that of each checkpoint, but on the validation photos
(`default_model_photos.VALIDATION`, never trained on), distorted by heldout_eval.py's own code. The held-out
photos are never touched here.

Rule, fixed before it was first used: the highest mean of the four acceptance numbers (blur, noise and JPEG
SRCC, and the pristine win rate) wins; on a tie, the earlier checkpoint (epoch-N files in epoch order, then
any others, such as scripts/average_epochs.py's averages, by name).

    python scripts/pick_epoch.py RUN/epoch-*.safetensors [RUN/avg-last-*.safetensors] [--json OUT]
    # prints the chosen path on stdout
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from default_model_photos import VALIDATION  # noqa: E402
from heldout_eval import TYPES, score_heldout, summarise  # noqa: E402


def selection_score(summary: dict) -> float:
    """Mean of the per-type SRCCs and the pristine win rate: each acceptance criterion counts the same."""
    parts = [summary["per_type"][t]["srcc"] for t in TYPES] + [summary["pristine_vs_level3"]["rate"]]
    return sum(parts) / len(parts)


def _epoch_order(path: str):
    m = re.search(r"epoch-(\d+)", Path(path).name)
    return (0, int(m.group(1))) if m else (1, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", help="student checkpoints (.safetensors), e.g. RUN/epoch-*.safetensors")
    ap.add_argument("--json", help="also write every checkpoint's numbers and the choice here")
    args = ap.parse_args(argv)
    rows = []
    for ckpt in sorted(args.checkpoints, key=_epoch_order):  # epoch-10 after epoch-9
        s = summarise(score_heldout(ckpt, VALIDATION), VALIDATION)
        rows.append({"checkpoint": ckpt, "score": selection_score(s), **{t: s["per_type"][t]["srcc"] for t in TYPES},
                     "wins": s["pristine_vs_level3"]["wins"], "cases": s["pristine_vs_level3"]["cases"]})
        r = rows[-1]
        print(f"{ckpt}: score {r['score']:.3f}  " + "  ".join(f"{t} {r[t]:.2f}" for t in TYPES) +
              f"  pristine > level 3 {r['wins']}/{r['cases']}", file=sys.stderr)
    best = max(rows, key=lambda r: r["score"])  # max keeps the first of equal scores
    if args.json:
        Path(args.json).write_text(json.dumps({"photos": sorted(VALIDATION), "chosen": best["checkpoint"], "rows": rows},
                                              indent=2))
    print(best["checkpoint"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
