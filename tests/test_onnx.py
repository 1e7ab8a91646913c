"""ONNX export, then onnxruntime scoring: the same scores as torch; foreign graphs are checked."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from usage_checks import usage_error


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx_imgs")
    rng = np.random.default_rng(0)
    for i in range(7):
        Image.fromarray((rng.random((50 + i, 70, 3)) * 255).astype(np.uint8)).save(d / f"i{i}.png")
    return d


def test_export_then_onnxruntime_matches_torch(folder, tmp_path, run_cli):
    onnx_path = tmp_path / "tiny.onnx"
    code, out, err = run_cli("export", "-m", "tiny-student", "--out", onnx_path)
    assert code == 0, err
    config = json.loads(onnx_path.with_suffix(".json").read_text())
    assert config["input_size"] == 64 and config["check_max_abs_diff"] < 1e-4
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == ["score", "feat"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch axis

    runs = {}
    for name, model in (("torch", "tiny-student"), ("onnx", onnx_path)):
        code, _, err = run_cli("score", folder, "-m", model, "--device", "cpu", "-j", "0", "-b", "3",
                               "-o", tmp_path / f"{name}.csv")
        assert code == 0, err
        runs[name] = pd.read_csv(tmp_path / f"{name}.csv").set_index("path").sort_index()
    assert list(runs["torch"].index) == list(runs["onnx"].index)
    np.testing.assert_allclose(runs["onnx"]["score"], runs["torch"]["score"], atol=1e-4, rtol=0)


class _FixedDemo(torch.nn.Module):
    """Stands in for the authors' demo graph: batch fixed at 1, score first, a feature map second."""

    def __init__(self, channels=3):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, 8, 3, stride=8)

    def forward(self, x):
        f = self.conv(x)
        return f.mean(dim=(1, 2, 3)).reshape(-1, 1), f


def test_fixed_batch_graph_is_fed_one_image_at_a_time(folder, tmp_path, run_cli):
    torch.manual_seed(0)
    net = _FixedDemo().eval()
    path = tmp_path / "demo.onnx"
    torch.onnx.export(net, (torch.rand(1, 3, 64, 64),), str(path), input_names=["input"],
                      output_names=["out", "feat"], dynamo=False)
    code, _, err = run_cli("score", folder, "-m", path, "--device", "cpu", "-j", "0", "-b", "4", "-o", tmp_path / "d.csv")
    assert code == 0, err
    df = pd.read_csv(tmp_path / "d.csv")
    from dpiqa_cli.data.images import decode_image

    for p, s in zip(df["path"], df["score"]):
        with torch.no_grad():
            ref = net(decode_image(p, 64)[0][None])[0].item()
        assert abs(ref - s) < 1e-5


def test_mismatched_input_signature_is_refused(folder, tmp_path, run_cli):
    path = tmp_path / "gray.onnx"
    torch.onnx.export(_FixedDemo(channels=1).eval(), (torch.rand(1, 1, 64, 64),), str(path), input_names=["x"],
                      dynamo=False)
    code, _, err = run_cli("score", folder, "-m", path, "--device", "cpu")
    usage_error(code, err, "expected float N x 3 x S x S")
    code, _, err = run_cli("score", folder, "-m", path, "-w", tmp_path / "w.safetensors")
    usage_error(code, err, "--weights")


def test_fp16_exact_weights_are_stored_as_fp16_and_score_the_same(tmp_path):
    """An fp16 checkpoint's unfolded weights go into the graph as fp16 (cast back to float32): half the bytes,
    the same numbers, so the same scores on ONNX Runtime and OpenVINO as a graph that keeps them float32."""
    import numpy as np
    import onnx
    import torch

    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint
    from dpiqa_cli.scoring import onnx_graph as O
    from dpiqa_cli.scoring.openvino_runner import OpenVinoRunner

    ckpt = save_checkpoint(load_model("tiny-student").model, tmp_path / "h.safetensors", spec_name="tiny-student",
                           info={}, dtype=torch.float16)
    O.export_onnx(weights=ckpt, out=tmp_path / "a.onnx")
    halves = [i for i in onnx.load(str(tmp_path / "a.onnx")).graph.initializer if i.data_type == onnx.TensorProto.FLOAT16]
    assert halves and all(i.name.endswith("_fp16") for i in halves)
    import shutil

    shutil.copy(tmp_path / "a.onnx", tmp_path / "b.onnx")
    shutil.copy(tmp_path / "a.json", tmp_path / "b.json")
    model = onnx.load(str(tmp_path / "b.onnx"))  # the same graph with float32 weights, by hand
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT16:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32), init.name[:-5]))
    keep = [n for n in model.graph.node if not n.name.endswith("_cast")]
    del model.graph.node[:]
    model.graph.node.extend(keep)
    onnx.save(model, str(tmp_path / "b.onnx"))
    x = (np.random.default_rng(0).random((6, 3, 64, 64)) * 255).astype(np.uint8)
    for runner in (lambda p: O.OnnxRunner(p, "cpu"), lambda p: OpenVinoRunner(p)):
        a, b = runner(tmp_path / "a.onnx"), runner(tmp_path / "b.onnx")
        assert np.array_equal(a.crop_scores(x), b.crop_scores(x))
