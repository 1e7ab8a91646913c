"""dpiqa: blind image quality assessment with DP-IQA (diffusion teacher, EfficientNet student).

Importing the package is cheap (no torch): the command line stays fast for --help and --version, and
each command imports what it needs.
"""

__version__ = "0.1.0"
