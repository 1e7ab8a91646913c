"""ONNX exports: the shipped graph (rowwise regressor) and a variant with plain Linear (Gemm) regressor."""
import sys, time, json
import numpy as np, onnx, torch
import torch.nn.functional as F
from dpiqa_cli.scoring.onnx import export_onnx
from dpiqa_cli.models import parts

t = time.time()
cfg = export_onnx("student", out="models/student.onnx")
print("export rowwise", round(time.time() - t, 1), "s", cfg["check_max_abs_diff"])
parts._rowwise_linear = F.linear  # eval path -> plain Linear
t = time.time()
cfg = export_onnx("student", out="models/student_gemm.onnx")
print("export gemm", round(time.time() - t, 1), "s", cfg["check_max_abs_diff"])
for f in ("models/student.onnx", "models/student_gemm.onnx"):
    g = onnx.load(f).graph
    from collections import Counter
    print(f, Counter(n.op_type for n in g.node).most_common())
