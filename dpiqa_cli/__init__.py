"""dpiqa: blind image quality assessment with DP-IQA (diffusion teacher, EfficientNet student).

Importing the package is cheap (no torch): the command line stays fast for --help and --version, and
each command imports what it needs.
"""

from dpiqa_cli.version import __version__  # noqa: F401


def create_scorer(model: str = "student", weights=None, **options):
    """A scorer of `model` (the bundled default, a checkpoint or an .onnx file): see `dpiqa_cli.api`."""
    from dpiqa_cli.api import create_scorer as create  # scoring imports numpy and a runtime: only when asked

    return create(model, weights, **options)
