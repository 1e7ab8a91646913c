"""dpiqa: blind image quality assessment with DP-IQA (diffusion teacher, EfficientNet student)."""
from dpiqa_cli import _tv_compat  # noqa: F401  (must run before torchvision is imported)

__version__ = "0.1.0"
