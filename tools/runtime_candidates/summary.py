"""Tables from res/rounds.jsonl (+ res/agreement.json): per batch size, medians over rounds.

speed-up = a run's img/s over the mean of the torch-fp32 runs just before and after it (same contention, as
near as a shared machine allows); cpu ms/img = process CPU time per crop (all threads), robust to
contention; others = cores used by other jobs during the run.
"""
import json
import sys
from collections import defaultdict

import numpy as np

REF = "torch-fp32"
recs = [json.loads(l) for l in open(sys.argv[1] if len(sys.argv) > 1 else "res/rounds.jsonl")]
recs = [r for r in recs if "error" not in r]
agree = json.load(open("res/agreement.json"))
refs = [i for i, r in enumerate(recs) if r["name"] == REF]


def ref_speed(i, b):
    before = [j for j in refs if j < i][-1:]
    after = [j for j in refs if j > i][:1]
    v = [recs[j]["batch"][b]["img_s"] for j in before + after]
    return float(np.mean(v)) if v else float("nan")


by = defaultdict(list)
for i, r in enumerate(recs):
    by[r["name"]].append((i, r))

rows = {}
for name, runs in by.items():
    row = {"runs": len(runs), "rss": float(np.median([r["rss_peak_mb"] for _, r in runs])),
           "others": float(np.median([r["others_cores"] for _, r in runs])),
           "cold": [r["startup_s"] for _, r in runs if r["cold"]],
           "warm": float(np.median([r["startup_s"] for _, r in runs if not r["cold"]] or [np.nan])),
           "inv": max(r["batch_invariance_max"] for _, r in runs)}
    for b in ("1", "2", "4", "8"):
        row[b] = {"img_s": float(np.median([r["batch"][b]["img_s"] for _, r in runs])),
                  "best": float(max(r["batch"][b]["best_img_s"] for _, r in runs if "best_img_s" in r["batch"][b])
                                if any("best_img_s" in r["batch"][b] for _, r in runs) else np.nan),
                  "speedup": float(np.median([r["batch"][b]["img_s"] / ref_speed(i, b) for i, r in runs]))
                  if name != REF else 1.0,
                  "cpu": float(np.median([r["batch"][b]["cpu_ms_per_img"] for _, r in runs
                                          if "cpu_ms_per_img" in r["batch"][b]] or [np.nan]))}
    rows[name] = row

order = sorted(rows, key=lambda n: -rows[n]["4"]["speedup"])
for b in ("1", "2", "4", "8"):
    print(f"\n### batch {b}\n")
    print("| candidate | img/s (median) | best call img/s | speed-up vs torch-fp32 | CPU ms / crop | peak RSS MB "
          "| start-up cold / warm s | max abs delta | SRCC | examples order | batch-invariant | runs | others (cores) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|")
    for n in order:
        r, a = rows[n], agree.get(n, {})
        cold = f"{r['cold'][0]:.1f}" if r["cold"] else "-"
        print(f"| {n} | {r[b]['img_s']:.1f} | {r[b]['best']:.1f} | {r[b]['speedup']:.2f}x | {r[b]['cpu']:.0f} "
              f"| {r['rss']:.0f} | {cold} / {r['warm']:.1f} | {a.get('max_abs_delta', float('nan')):.1e} "
              f"| {a.get('srcc', float('nan')):.6f} | {'same' if a.get('examples_order_same') else 'DIFFERENT'} "
              f"| {'yes' if r['inv'] == 0 else 'no (%.0e)' % r['inv']} | {r['runs']} | {r['others']:.2f} |")
json.dump(rows, open("res/summary.json", "w"), indent=1)
