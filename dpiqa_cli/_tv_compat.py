"""torchvision compatibility step; must run before anything imports torchvision.

Why: on machines where torch is a CPU build but the torchvision wheel was built
for CUDA, torchvision's `_C` extension cannot load, so its Python code fails at
import with "operator torchvision::nms does not exist" (it registers fake/meta
kernels for ops whose schema was never defined). timm and diffusers import
torchvision, so that failure would take the whole tool down.

What: first try to load torchvision's own `_C` library. Only if that fails do we
define the two op *schemas* that torchvision's import-time registrations need.
No kernels are provided: calling `torchvision.ops.nms` would still raise, and
dpiqa never calls it. Where `_C` loads (any consistent install, CUDA included)
this module does nothing.
"""
from __future__ import annotations

import importlib.util
import os

_DONE = False


def _load_torchvision_c() -> bool:
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # torchvision not installed: nothing to fix
    folder = list(spec.submodule_search_locations)[0]
    for name in os.listdir(folder):
        if name.startswith("_C") and name.endswith((".so", ".pyd")):
            try:
                torch.ops.load_library(os.path.join(folder, name))
                return True
            except (OSError, RuntimeError):
                return False
    return False


def ensure_torchvision() -> None:
    """Make `import torchvision` safe. Idempotent."""
    global _DONE
    if _DONE:
        return
    _DONE = True
    if _load_torchvision_c():
        return
    import torch

    # Schemas copied from torchvision's C++ registrations (names and types only).
    lib = torch.library.Library("torchvision", "DEF")  # noqa: F841 - kept alive below
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define(
        "qnms(Tensor qdets, Tensor qscores, float iou_threshold) -> Tensor"
    )
    globals()["_LIB"] = lib  # a Library is unregistered when garbage-collected


ensure_torchvision()
