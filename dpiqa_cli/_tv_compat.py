"""Let a CUDA build of torchvision import under a CPU torch; must run before anything imports torchvision.

There its `_C` extension cannot load, and its import fails with "operator torchvision::nms does not exist",
taking timm and diffusers with it. So: try to load `_C`, and only if that fails define the two op schemas
its import needs (no kernels: dpiqa never calls nms). Where `_C` loads, this does nothing.
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
