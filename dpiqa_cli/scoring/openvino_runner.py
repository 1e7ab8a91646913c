"""OpenVINO: what `--runtime auto` runs a student on the CPU with, where OpenVINO is installed (x86-64 machines).

It compiles the same cached ONNX graph as ONNX Runtime (`scoring.graph_cache`) in throughput mode: every crop
is its own inference request of one crop, and the crops of a batch are spread over OpenVINO's streams (one
per core on a small machine). Measured on 2 cores (BENCHMARKS.md, "CPU runtime"): more crops per second than
ONNX Runtime on the same graph, scores equal to ~1e-6, and a crop's score never depends on its batch mates.

Precision is pinned to f32: left alone, OpenVINO runs bf16 on CPUs that have it, which failed the ranking
bar. OpenVINO's own compiled-model cache is not used: it trusts its files (a damaged one gave wrong scores,
silently), while compiling the checked graph takes under a second.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dpiqa_cli.data.views import view_from_config
from dpiqa_cli.device import usable_cpus
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.models.checkpoint_config import read_json_config
from dpiqa_cli.scoring.onnx_graph import ONNX_FORMAT
from dpiqa_cli.scoring.runner import Runner


def openvino_version() -> str | None:
    try:
        import openvino
    except ImportError:
        return None
    return openvino.get_version()


class OpenVinoRunner(Runner):
    runtime = "openvino"

    def __init__(self, path: Path, threads: int | None = None, name: str | None = None, view=None):
        try:
            import openvino as ov
        except ImportError:
            raise DpiqaError("--runtime openvino needs OpenVINO (`pip install openvino`)") from None
        config = read_json_config(path.with_suffix(".json"), ONNX_FORMAT)
        size = int(config["input_size"])
        view = view or view_from_config(config, size)
        threads = threads or usable_cpus()
        core = ov.Core()
        try:
            model = core.read_model(str(path))
            model.reshape({model.inputs[0].get_any_name(): [1, 3, size, size]})
            # The decoded crops go in as they are, uint8 H x W x 3: the streams convert them in parallel,
            # where a float copy of a whole batch would be made in this thread while the streams wait.
            ppp = ov.preprocess.PrePostProcessor(model)
            ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
            ppp.input().model().set_layout(ov.Layout("NCHW"))
            ppp.input().preprocess().convert_element_type(ov.Type.f32).scale(255.0)
            model = ppp.build()
            # Pinning threads to cores is OpenVINO's own choice when it has the machine; beside other scorers
            # (Ray actors, decode processes) it would pin several processes to the same cores.
            self.compiled = core.compile_model(model, "CPU", {
                "PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": "f32",
                "INFERENCE_NUM_THREADS": threads, "ENABLE_CPU_PINNING": threads >= usable_cpus()})
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with multi-line texts
            raise DpiqaError(f"OpenVINO cannot compile {path}: {str(exc).strip().splitlines()[0][:300]}") from None
        self.requests = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.queue = ov.AsyncInferQueue(self.compiled, self.requests)
        self.queue.set_callback(self._done)
        self._out: np.ndarray = np.empty(0, np.float32)
        # A batch waits for its last crop: a few crops per stream keep every stream busy to the end.
        super().__init__(name or path.name, view, config.get("mos_scale"), 2 * self.requests,
                         calibration=config.get("calibration"))

    def set_batch(self, images: int) -> None:
        """One crop per request whatever the batch: no score depends on its batch mates."""

    def _done(self, request, i: int) -> None:
        self._out[i] = request.get_output_tensor(0).data.reshape(-1)[0]

    def crop_scores(self, x) -> np.ndarray:
        """One score per crop: every crop is its own request, spread over the streams."""
        hwc = np.ascontiguousarray(self.numpy_crops(x).transpose(0, 2, 3, 1))  # no copy: NCHW crops are H x W x 3 in memory
        self._out = np.empty(len(hwc), np.float32)
        for i in range(len(hwc)):
            self.queue.start_async({0: hwc[i:i + 1]}, i)
        self.queue.wait_all()
        return self._out

    def __call__(self, x) -> np.ndarray:
        return self.crop_scores(x)
