"""Agreement of each candidate's scores with torch fp32 eager (res/agree-torch-fp32.json)."""
import glob, json, sys
import numpy as np
from scipy.stats import spearmanr

ref = json.load(open("res/agree-torch-fp32.json"))
rc, re_ = np.array(ref["crops"]), np.array(ref["examples"])
order = np.argsort(-re_, kind="stable")
print(f"reference: {len(rc)} crops, score range {rc.min():.3f}..{rc.max():.3f}, std {rc.std():.3f}; "
      f"{len(re_)} examples, min gap between example scores {np.diff(np.sort(re_)).min():.4f}")
out = {}
for f in sorted(glob.glob("res/agree-*.json")):
    d = json.load(open(f))
    c, e = np.array(d["crops"]), np.array(d["examples"])
    dmax = float(max(np.abs(c - rc).max(), np.abs(e - re_).max()))
    srcc = float(spearmanr(c, rc)[0])
    same = bool((np.argsort(-e, kind="stable") == order).all())
    out[d["name"]] = {"max_abs_delta": dmax, "srcc": srcc, "examples_order_same": same,
                      "mean_abs_delta": float(np.abs(c - rc).mean())}
    print(f"{d['name']:28s} max|d| {dmax:.2e}  mean|d| {np.abs(c - rc).mean():.1e}  SRCC {srcc:.6f}  order same {same}")
json.dump(out, open("res/agreement.json", "w"), indent=1)
