"""One candidate runtime in its own process: start-up, throughput at batch 4,1,2,8, peak RSS, and scores.

usage: python bench_one.py CANDIDATE OUT.json [--agree] [--min-s SECONDS]
Env T0 = time.time() taken by the driver just before it started this process (start-up clock).
Prints a JSON line; scores go in OUT.json (when --agree) for compare.py.
"""
import json
import os
import resource
import sys
import time

T0 = float(os.environ.get("T0", time.time()))
HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "models")
CACHES = os.path.join(HERE, "caches")
BATCHES = [4, 1, 2, 8]  # first is the start-up batch (one 1024x768 photo = 4 crops)
THREADS = int(os.environ.get("THREADS", "2"))


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------- candidates: name -> builder(opts)
# A builder returns (fn, kind): fn(batch) -> numpy scores (N,), kind "torch" (float NCHW channels_last
# tensor in), "numpy" (contiguous float32 NCHW array in) or "uint8" (uint8 NCHW view of H x W x 3 crops).

def torch_builder(precision="fp32", compile=None, freeze=False, gemm=False, mode=None):
    import torch

    torch.set_num_threads(THREADS)
    if gemm:
        import torch.nn.functional as F
        from dpiqa_cli.models import parts

        parts._rowwise_linear = F.linear
    from dpiqa_cli.models.checkpoint import load_model

    model = load_model("student").model.eval().to(memory_format=torch.channels_last)
    if compile:
        import torch._inductor.config as ic

        ic.freezing = freeze
        model = torch.compile(model, dynamic=False, mode=mode)
    dt = torch.bfloat16 if precision == "bf16" else torch.float32

    def fn(x):
        with torch.inference_mode(), torch.autocast("cpu", dtype=dt, enabled=precision != "fp32"):
            return model(x)[0].float().reshape(-1).numpy()

    return fn, "torch"


def ort_builder(level="all", threads=None, graph="student.onnx", saved=False, tag="", static=False):
    import onnxruntime as ort

    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "ext": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "layout": ort.GraphOptimizationLevel.ORT_ENABLE_LAYOUT,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    def options():
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.intra_op_num_threads = threads or THREADS
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return so

    so = options()
    path = os.path.join(MODELS, graph)
    if saved:  # an optimised copy keyed by graph, level and ORT version; reused with optimisation off
        cache = os.path.join(CACHES, f"ort-{os.environ.get('CAND', tag or graph)}-{ort.__version__}.onnx")
        if os.path.exists(cache):
            path, so.graph_optimization_level = cache, levels["disable"]
        else:
            so.graph_optimization_level = levels[level]
            so.optimized_model_filepath = cache
    else:
        so.graph_optimization_level = levels[level]
    if static:  # one session per batch size, the batch dimension fixed (free dimension override)
        per = {}

        def get(b):
            if b not in per:
                o = options()
                o.graph_optimization_level = so.graph_optimization_level
                o.add_free_dimension_override_by_name("batch", b)
                per[b] = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
            return per[b]
    else:
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        get = lambda b: sess
    name, out = "input", "score"

    def fn(x):
        return get(len(x)).run([out], {name: x})[0].reshape(-1)

    return fn, "numpy"


def ov_builder(precision="f32", hint="LATENCY", streams=None, graph="student.onnx", cache=True, static=False,
               tag="", mode=None):
    import numpy as np
    import openvino as ov

    core = ov.Core()
    cfg = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": hint, "INFERENCE_NUM_THREADS": THREADS}
    if streams:
        cfg["NUM_STREAMS"] = streams
    if mode:
        cfg["EXECUTION_MODE_HINT"] = mode
    if cache:
        cfg["CACHE_DIR"] = os.path.join(CACHES, f"ov-{os.environ.get('CAND', tag or graph)}")
    path = os.path.join(MODELS, graph)
    if not static:
        compiled = core.compile_model(path, "CPU", cfg)
        nreq = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        reqs = [compiled.create_infer_request() for _ in range(max(1, nreq))]
        getc = lambda b: (compiled, reqs)
    else:  # one compiled model per batch size (static shapes), compiled on first use
        per = {}

        def getc(b):
            if b not in per:
                m = core.read_model(path)
                m.reshape({m.inputs[0].get_any_name(): [b, 3, 512, 512]})
                c = core.compile_model(m, "CPU", cfg)
                per[b] = (c, [c.create_infer_request()])
            return per[b]

    def fn(x):
        compiled, rq = getc(len(x))
        if len(rq) == 1:
            return rq[0].infer({0: x})[0].reshape(-1).copy()
        chunks = np.array_split(x, min(len(rq), len(x)))
        for r, c in zip(rq, chunks):
            r.start_async({0: c})
        outs = []
        for r, c in zip(rq, chunks):
            r.wait()
            outs.append(r.get_output_tensor(0).data.reshape(-1).copy())
        return np.concatenate(outs)

    return fn, "numpy"


def dpiqa_builder(runtime="openvino"):
    """The shipped CPU runner itself (`dpiqa score --runtime RUNTIME`): uint8 crops in, as score feeds it."""
    from dpiqa_cli.scoring.pipeline import prepare_runner

    runner, _ = prepare_runner(None, None, "cpu", "fp32", runtime=runtime, threads=THREADS, quiet=True)

    def fn(x):
        runner.set_batch(len(x))  # native view: one forward of the batch, as the others (OpenVINO: a request a crop)
        return runner.crop_scores(x).astype("float64")

    return fn, "uint8"


CANDIDATES = {
    "dpiqa-openvino": (dpiqa_builder, {"runtime": "openvino"}),
    "dpiqa-onnxruntime": (dpiqa_builder, {"runtime": "onnx"}),
    "torch-fp32": (torch_builder, {}),
    "torch-fp32-gemm": (torch_builder, {"gemm": True}),
    "torch-bf16": (torch_builder, {"precision": "bf16"}),
    "compile-fp32": (torch_builder, {"compile": True}),
    "compile-fp32-freeze": (torch_builder, {"compile": True, "freeze": True}),
    "compile-fp32-freeze-gemm": (torch_builder, {"compile": True, "freeze": True, "gemm": True}),
    "compile-fp32-freeze-mat": (torch_builder, {"compile": True, "freeze": True, "mode": "max-autotune-no-cudagraphs"}),
    "compile-bf16-freeze": (torch_builder, {"compile": True, "freeze": True, "precision": "bf16"}),
    "ort-basic-t2": (ort_builder, {"level": "basic"}),
    "ort-ext-t2": (ort_builder, {"level": "ext"}),
    "ort-all-t2": (ort_builder, {"level": "all"}),
    "ort-basic-t1": (ort_builder, {"level": "basic", "threads": 1}),
    "ort-ext-t1": (ort_builder, {"level": "ext", "threads": 1}),
    "ort-all-t1": (ort_builder, {"level": "all", "threads": 1}),
    "ort-all-t2-gemm": (ort_builder, {"level": "all", "graph": "student_gemm.onnx"}),
    "ort-all-t2-saved": (ort_builder, {"level": "all", "saved": True}),
    "ort-all-t2-gemm-saved": (ort_builder, {"level": "all", "saved": True, "graph": "student_gemm.onnx"}),
    "ort-all-t2-gemm-static": (ort_builder, {"level": "all", "static": True, "graph": "student_gemm.onnx"}),
    "ort-all-t1-gemm": (ort_builder, {"level": "all", "threads": 1, "graph": "student_gemm.onnx"}),
    "ort-ext-t2-gemm": (ort_builder, {"level": "ext", "graph": "student_gemm.onnx"}),
    "ort-ext-t2-saved": (ort_builder, {"level": "ext", "saved": True}),
    "ort-int8-dyn": (ort_builder, {"level": "all", "graph": "student_int8_dyn.onnx"}),
    "ort-int8-qdq": (ort_builder, {"level": "all", "graph": "student_int8_qdq.onnx"}),
    "ov-f32-lat": (ov_builder, {}),
    "ov-f32-lat-gemm": (ov_builder, {"graph": "student_gemm.onnx"}),
    "ov-f32-lat-static": (ov_builder, {"static": True, "tag": "static"}),
    "ov-f32-lat-static-gemm": (ov_builder, {"static": True, "tag": "static-gemm", "graph": "student_gemm.onnx"}),
    "ov-int8-nncf-static": (ov_builder, {"graph": "student_int8_nncf.xml", "static": True, "tag": "int8-static"}),
    "ov-f32-tput": (ov_builder, {"hint": "THROUGHPUT"}),
    "ov-f32-tput-s2": (ov_builder, {"hint": "THROUGHPUT", "streams": 2}),
    "ov-f32-lat-acc": (ov_builder, {"mode": "ACCURACY", "tag": "acc"}),
    "ov-bf16-lat": (ov_builder, {"precision": "bf16", "tag": "bf16"}),
    "ov-int8-nncf": (ov_builder, {"graph": "student_int8_nncf.xml"}),
}


def agreement(fn, prep, out, name, np, extra=None):
    """Scores of the 240 agreement crops (batches of AGREE_BATCH) and the examples (one at a time)."""
    d = np.load(os.path.join(HERE, "data.npz"))
    crops, ex = d["crops"], d["examples"]
    B = int(os.environ.get("AGREE_BATCH", "4"))
    sc = np.concatenate([fn(prep(crops[i:i + B])) for i in range(0, len(crops), B)])
    se = np.concatenate([fn(prep(ex[i:i + 1])) for i in range(len(ex))])
    with open(out + ".tmp", "w") as f:
        json.dump({"name": name, "crops": sc.tolist(), "examples": se.tolist(), **(extra or {})}, f)
    os.replace(out + ".tmp", out)


def main():
    name, out = sys.argv[1], sys.argv[2]
    agree = "--agree" in sys.argv
    min_s = float(sys.argv[sys.argv.index("--min-s") + 1]) if "--min-s" in sys.argv else 4.0
    max_calls = int(sys.argv[sys.argv.index("--max-calls") + 1]) if "--max-calls" in sys.argv else 50
    load0 = os.getloadavg()
    import numpy as np

    builder, opts = CANDIDATES[name]
    t_imp = time.time()
    fn, kind = builder(**opts)
    t_built = time.time()
    thr = np.load(os.path.join(HERE, "thr.npy"))  # 8 x 512 x 512 x 3 uint8 real crops

    def prep(a):
        if kind == "uint8":  # N x H x W x 3 crops as NCHW views, as the decode stage hands them over
            return a.transpose(0, 3, 1, 2)
        x = a.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        if kind == "torch":
            import torch

            return torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        return np.ascontiguousarray(x)

    if "--agree-only" in sys.argv:
        agreement(fn, prep, out, name, np)
        print("RESULT " + json.dumps({"name": name, "agree_only": True, "startup_s": time.time() - T0}), flush=True)
        return
    xs = {b: prep(thr[:b]) for b in BATCHES}
    t = time.time()
    first = fn(xs[BATCHES[0]])
    t_first = time.time()
    res = {"name": name, "load_before": load0, "startup_s": t_first - T0, "build_s": t_built - T0,
           "first_call_s": t_first - t, "rss_after_first_mb": rss_mb(), "batch": {}}
    for b in BATCHES:
        calls, cpu = [], []
        if b != BATCHES[0]:
            t = time.perf_counter()
            fn(xs[b])  # first call at a new shape (recompiles under torch.compile; static OV)
            res["batch"].setdefault("first_call_s", {})[b] = time.perf_counter() - t
        fn(xs[b])  # one more warm-up
        t_start = time.perf_counter()
        while len(calls) < 3 or (time.perf_counter() - t_start < min_s and len(calls) < max_calls):
            t, c = time.perf_counter(), time.process_time()
            fn(xs[b])
            calls.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        med = float(np.median(calls))
        res["batch"][str(b)] = {"ms": med * 1000, "img_s": b / med, "calls": len(calls),
                                "best_img_s": b / min(calls), "cpu_ms_per_img": float(np.median(cpu)) * 1000 / b}
    res["rss_peak_mb"] = rss_mb()
    res["load_after"] = os.getloadavg()
    # batch invariance: crops 0..7 scored one at a time vs as one batch of 8 vs inside a batch of 4
    s1 = np.concatenate([fn(prep(thr[i:i + 1])) for i in range(8)])
    s8 = fn(xs[8])
    res["batch_invariance_max"] = float(np.abs(s1 - s8).max())
    if agree:
        agreement(fn, prep, out, name, np, {"s1": s1.tolist(), "s8": s8.tolist()})
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
