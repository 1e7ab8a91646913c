"""int8 models: ORT dynamic, ORT static QDQ (per-channel, 64 calibration crops, seed 1) and OpenVINO NNCF PTQ.
The calibration crops are made like the agreement set but with another seed (no overlap by construction)."""
import os
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
M = os.path.join(HERE, "models")


def calib(n=64):
    from PIL import Image

    import make_data as md

    rng = np.random.default_rng(1)
    src = md.sources()
    keys = sorted(src)
    out = []
    for i in range(n):
        img = src[keys[int(rng.integers(len(keys)))]]
        w, h = img.size
        short = max(512, int(min(w, h) * rng.uniform(0.6, 1.6)))
        s = short / min(w, h)
        img2 = img.resize((max(512, round(w * s)), max(512, round(h * s))), Image.BILINEAR)
        x0, y0 = int(rng.integers(0, img2.size[0] - 511)), int(rng.integers(0, img2.size[1] - 511))
        c, _ = md.distort(img2.crop((x0, y0, x0 + 512, y0 + 512)), rng)
        out.append(np.asarray(c, np.float32).transpose(2, 0, 1) / 255.0)
    return np.stack(out)


def main(which, graph="student_gemm.onnx"):
    src = os.path.join(M, graph)
    if which == "ort":
        from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                              quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process

        pre = os.path.join(M, "student_pre.onnx")
        quant_pre_process(src, pre, skip_symbolic_shape=True)
        t = time.time()
        quantize_dynamic(pre, os.path.join(M, "student_int8_dyn.onnx"), weight_type=QuantType.QUInt8,
                         op_types_to_quantize=["Conv", "MatMul", "Gemm"])
        print("dyn", time.time() - t)
        data = calib()

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter([{"input": data[i:i + 1]} for i in range(len(data))])

            def get_next(self):
                return next(self.it, None)

        t = time.time()
        quantize_static(pre, os.path.join(M, "student_int8_qdq.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
        print("qdq", time.time() - t)
    else:
        import nncf
        import openvino as ov

        data = calib()
        model = ov.Core().read_model(src)
        t = time.time()
        q = nncf.quantize(model, nncf.Dataset([data[i:i + 1] for i in range(len(data))]), subset_size=len(data))
        ov.save_model(q, os.path.join(M, "student_int8_nncf.xml"))
        print("nncf", time.time() - t)


if __name__ == "__main__":
    main(*sys.argv[1:])
