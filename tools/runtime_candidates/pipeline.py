"""End to end on 1024x768 q90 JPEGs, 4 crops of 512 per photo: decode + crop + float + model.

usage: THREADS=1|2 python pipeline.py CANDIDATE serial|prefetch [REPEAT]
serial: decode in the main thread, then the model (THREADS intra-op threads).
prefetch: a ThreadPoolExecutor with 1 decode thread keeps 2 photos ahead while the main thread runs the model.
"""
import glob
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import bench_one
from decode_bench import J, crops4, dec_draft_1024, to_float


def load(f, kind):
    x = to_float(crops4(dec_draft_1024(f)))
    if kind == "torch":
        import torch

        return torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
    return x


def main():
    name, mode = sys.argv[1], sys.argv[2]
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    builder, opts = bench_one.CANDIDATES[name]
    fn, kind = builder(**opts)
    files = sorted(glob.glob(f"{J}/p*.jpg")) * repeat
    fn(load(files[0], kind))  # warm-up
    fn(load(files[1], kind))
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    scores = []
    if mode == "serial":
        for f in files:
            scores.append(fn(load(f, kind)).mean())
    else:
        with ThreadPoolExecutor(1) as ex:
            futs = [ex.submit(load, f, kind) for f in files[:2]]
            for i in range(len(files)):
                x = futs[i].result()
                if i + 2 < len(files):
                    futs.append(ex.submit(load, files[i + 2], kind))
                scores.append(fn(x).mean())
    dt = time.perf_counter() - t
    print("RESULT " + json.dumps({"name": name, "mode": mode, "threads": bench_one.THREADS, "photos": len(files),
                                  "photos_s": len(files) / dt, "crops_s": 4 * len(files) / dt, "load": load0,
                                  "score0": float(scores[0])}), flush=True)


if __name__ == "__main__":
    main()
