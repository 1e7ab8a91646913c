"""Interleaved rounds: every candidate in its own process, A B C ... A B C ...; the first run of a candidate
starts with its caches cleared (cold start-up), later runs find them warm.

Shared machine: before each run we wait (up to QUIET_WAIT s) until other jobs use < QUIET cores over 3 s,
and we record how many cores other jobs used during the run ("others"), from /proc/stat minus this run's
own CPU time (getrusage of the finished child, its compile workers included).

usage: python run_rounds.py ROUNDS MIN_S CAND [CAND ...]   (appends to res/rounds.jsonl)
env: AGREE_ONLY=1 runs each candidate once, only scoring the agreement set (timing-free, any load).
"""
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HZ = os.sysconf("SC_CLK_TCK")
QUIET = float(os.environ.get("QUIET", "0.35"))
QUIET_WAIT = float(os.environ.get("QUIET_WAIT", "240"))


def busy_s():
    f = open("/proc/stat").readline().split()[1:]
    v = list(map(int, f))
    return (sum(v[:8]) - v[3] - v[4]) / HZ  # all but idle and iowait


def others_now(window=3.0):
    b0, t0 = busy_s(), time.time()
    time.sleep(window)
    return (busy_s() - b0) / (time.time() - t0)  # nothing of ours runs now


def wait_quiet():
    t0 = time.time()
    while True:
        o = others_now()
        if o < QUIET or time.time() - t0 > QUIET_WAIT:
            return o, time.time() - t0


def clear_caches(name):
    for p in (glob.glob(os.path.join(HERE, "caches", f"*-{name}"))
              + glob.glob(os.path.join(HERE, "caches", f"ort-{name}-*"))):
        shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)


def run_one(name, args, env):
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    b0, t0 = busy_s(), time.time()
    env["T0"] = repr(time.time())
    p = subprocess.run(["nice", "-n", "10"] + args, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.time() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    mine = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    others = max(0.0, (busy_s() - b0 - mine) / wall)
    line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
    rec = json.loads(line[0][7:]) if line else {"name": name, "error": (p.stderr or p.stdout)[-800:]}
    rec.update(wall_s=wall, cpu_s=mine, others_cores=others)
    return rec


def main():
    rounds, min_s, cands = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    agree_only = os.environ.get("AGREE_ONLY") == "1"
    seen = set()
    start = int(os.environ.get("START_ROUND", "1"))
    for r in range(start, start + rounds):
        for name in cands:
            cold = name not in seen and not agree_only and r == 1
            seen.add(name)
            if cold:
                clear_caches(name)
            env = dict(os.environ, DPIQA_WEIGHTS_DIR=os.path.join(HERE, "..", "..", "weights"), PYTHONDONTWRITEBYTECODE="1",
                       TORCHINDUCTOR_CACHE_DIR=os.path.join(HERE, "caches", f"inductor-{name}"), CAND=name)
            out = os.path.join(HERE, "res", f"agree-{name}.json")
            args = [sys.executable, os.path.join(HERE, "bench_one.py"), name, out, "--min-s", min_s]
            if agree_only:
                if os.path.exists(out):
                    continue
                args.append("--agree-only")
                q, waited = None, 0.0
            else:
                q, waited = wait_quiet()
            rec = run_one(name, args, env)
            rec.update(round=r, cold=cold, others_before=q, waited_s=waited)
            with open(os.path.join(HERE, "res", "agree_runs.jsonl" if agree_only else "rounds.jsonl"), "a") as f:
                f.write(json.dumps(rec) + "\n")
            if "error" in rec:
                print(r, name, "ERR", rec["error"][-300:], flush=True)
            elif agree_only:
                print(name, f"agreement scored in {rec['wall_s']:.0f}s", flush=True)
            else:
                b = rec["batch"]
                print(r, f"{name:26s} start {rec['startup_s']:6.1f}s rss {rec['rss_peak_mb']:5.0f} "
                      + " ".join(f"b{k}:{v['img_s']:5.1f}" for k, v in b.items() if k != "first_call_s")
                      + f" inv {rec['batch_invariance_max']:.0e} others {q:.2f}/{rec['others_cores']:.2f} "
                      f"waited {waited:.0f}s", flush=True)


if __name__ == "__main__":
    main()
