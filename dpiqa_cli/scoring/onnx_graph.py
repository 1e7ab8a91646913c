"""ONNX: export a model (`dpiqa export`) and score with onnxruntime (`dpiqa score --model x.onnx`).

Exported graphs take `input` (N x 3 x S x S float in [0, 1], dynamic N) and give `score` (N x 1) and
`feat` (N x 8 x F x F). A `x.json` beside `x.onnx` records input size and MOS scale. Foreign graphs
(the authors' demo student) are accepted when their single input is N x 3 x S x S float; their first
output is taken as the score. A batch dimension fixed in the graph is honoured by feeding chunks of
that size (one image at a time for the usual fixed batch of 1).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from dpiqa_cli.atomic import write_json, write_via
from dpiqa_cli.data.views import view_from_config
from dpiqa_cli.device import device_type
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.checkpoint_config import FORMAT, ONNX_FORMAT, read_json_config, sha256_file
from dpiqa_cli.scoring.runner import Runner

DEFAULT_SIZE = 512  # the authors' demo graph: 512 x 512


def export_onnx(model: str = "student", weights=None, out: str | Path = "model.onnx", opset: int = 17,
                check: bool = True) -> dict:
    """Write `out` (+ `out.json`); returns the config, with the torch-vs-onnxruntime max difference."""
    import torch  # only the export needs torch: scoring a graph runs without it

    from dpiqa_cli.models.checkpoint import load_model
    from dpiqa_cli.models.layers import Regressor

    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise DpiqaError(f"--out must end in .onnx, not {out.name!r}")
    if read_json_config(out.with_suffix(".json"), FORMAT, required=False):  # x.safetensors's own config
        raise DpiqaError(f"--out {out.name}: its {out.with_suffix('.json').name} would overwrite the checkpoint "
                         "config of the same name; choose another name")
    loaded = load_model(model, weights, device="cpu")
    size = loaded.input_size
    net = loaded.model.eval()
    for m in net.modules():  # a plain Gemm head: faster in ONNX Runtime, whose rows measured batch-invariant
        if isinstance(m, Regressor):
            m.rowwise = False
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))

    def write(tmp: str) -> None:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices are not for users
            torch.onnx.export(net, (x,), tmp, input_names=["input"], output_names=["score", "feat"],
                              dynamic_axes={"input": {0: "batch"}, "score": {0: "batch"}, "feat": {0: "batch"}},
                              opset_version=opset, dynamo=False, do_constant_folding=True)
        store_fp16_exact(tmp)

    try:
        write_via(out, write)
    except DpiqaError:
        raise
    except Exception as exc:
        raise DpiqaError(f"ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from None
    config = {"format": ONNX_FORMAT, "model": loaded.spec.name, "source": str(weights or model),
              "source_sha256": loaded.config.get("sha256"), "input_size": size,
              "feat_size": int(loaded.config.get("feat_size") or loaded.spec.feat_size),
              "mos_scale": loaded.config.get("mos_scale"), "dataset": loaded.config.get("dataset"),
              "split_images": loaded.config.get("split_images"), "view": loaded.view.to_config(),
              "calibration": loaded.config.get("calibration"),
              "opset": opset, "input": "input", "outputs": ["score", "feat"], "range": [0.0, 1.0],
              "sha256": sha256_file(out)}
    if check:
        with torch.inference_mode():
            ref = net(x)[0].reshape(-1).numpy()
        got = OnnxRunner(out, "cpu").run_float(x.numpy())
        config["check_max_abs_diff"] = float(np.abs(ref - got).max())
    write_json(out.with_suffix(".json"), config)
    return config


def store_fp16_exact(path: str | Path, min_size: int = 4096) -> None:
    """Store each float32 weight whose every value is exactly an fp16 number (those of an fp16 checkpoint
    that no export step folded into another) as fp16, cast back to float32 in the graph: the same numbers
    reach every kernel, in half the bytes (the bundled model's 32768 x 512 head is most of its graph)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    casts = []
    for init in model.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        w = numpy_helper.to_array(init)
        if w.size < min_size or not np.array_equal(w.astype(np.float16).astype(np.float32), w):
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(w.astype(np.float16), name + "_fp16"))
        casts.append(helper.make_node("Cast", [name + "_fp16"], [name], to=onnx.TensorProto.FLOAT,
                                      name=name + "_cast"))
    if casts:
        nodes = casts + list(model.graph.node)
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        onnx.save(model, str(path))


def _providers(device) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device_type(device) == "cuda" and "CUDAExecutionProvider" in available:
        index = int(str(device).partition(":")[2] or 0)
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxRunner(Runner):
    runtime = "onnxruntime"

    def __init__(self, path: Path, device, threads: int | None = None, name: str | None = None, view=None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise DpiqaError("scoring an .onnx model needs onnxruntime (`pip install onnxruntime`)") from None
        if not path.is_file():
            raise DpiqaError(f"ONNX model not found: {path}")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:  # the cores the decode worker processes leave free (`make_runner`)
            opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        try:
            self.sess = ort.InferenceSession(str(path), opts, providers=_providers(device))
        except Exception as exc:
            raise DpiqaError(f"{path} is not a loadable ONNX model: {str(exc).splitlines()[0][:300]}") from None
        config = read_json_config(path.with_suffix(".json"), ONNX_FORMAT, required=False)  # foreign graphs: none
        size, self.fixed_batch = self._check_signature(path, config)
        view = view or view_from_config(config, size)
        if view.size != size:
            raise DpiqaError(f"{path.name}: graph input is {size} px but the model's view cuts {view.size} px crops")
        # CPU: batch 2, as torch (per-crop speed measured flat from 1 to 8; the arena grows with the batch)
        batch = 8 if device_type(device) == "cuda" else 2
        super().__init__(name or path.name, view, config.get("mos_scale"), batch,
                         calibration=config.get("calibration"))

    def _check_signature(self, path: Path, config: dict) -> tuple[int, int | None]:
        inputs = self.sess.get_inputs()
        if len(inputs) != 1:
            raise DpiqaError(f"{path.name} has {len(inputs)} inputs; expected one image input N x 3 x S x S")
        inp = inputs[0]
        self.input_name = inp.name
        shape = list(inp.shape)
        what = f"{path.name}: input {inp.name!r} is {inp.type} {shape}; expected float N x 3 x S x S in [0, 1]"
        if inp.type != "tensor(float)" or len(shape) != 4 or shape[1] != 3:
            raise DpiqaError(what)
        h, w = shape[2], shape[3]
        if isinstance(h, int) and isinstance(w, int):
            if h != w:
                raise DpiqaError(what + " (square)")
            size = h
        elif isinstance(h, int) or isinstance(w, int):
            size = h if isinstance(h, int) else w
        else:
            size = int(config.get("input_size") or DEFAULT_SIZE)
        if config.get("input_size") and int(config["input_size"]) != size:
            raise DpiqaError(f"{path.name}: graph input is {size} px but its .json says {config['input_size']}")
        if not self.sess.get_outputs():
            raise DpiqaError(f"{path.name} has no outputs")
        batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        return int(size), batch

    def run_float(self, x: np.ndarray) -> np.ndarray:
        """N x 3 x S x S float32 in [0, 1] -> N scores (first output)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        out_name = self.sess.get_outputs()[0].name
        if self.fixed_batch is None:
            return self.sess.run([out_name], {self.input_name: x})[0].reshape(len(x), -1)[:, 0]
        k, res = self.fixed_batch, []
        for i in range(0, len(x), k):
            chunk = x[i:i + k]
            n = len(chunk)
            if n < k:  # pad the last chunk up to the graph's fixed batch
                chunk = np.concatenate([chunk, np.zeros((k - n,) + chunk.shape[1:], np.float32)])
            res.append(self.sess.run([out_name], {self.input_name: chunk})[0].reshape(k, -1)[:n, 0])
        return np.concatenate(res)

    def __call__(self, x) -> np.ndarray:
        n = len(x)
        x = self.numpy_crops(x)
        pad = self.padding(n) if self.fixed_batch is None else 0  # a fixed graph batch: run_float pads
        f = np.empty((n + pad,) + x.shape[1:], np.float32)  # NCHW-contiguous, as ONNX Runtime wants
        np.divide(x, np.float32(255.0), out=f[:n], dtype=np.float32, casting="unsafe")
        f[n:] = 0.0
        return self.run_float(f)[:n].astype(np.float32)
