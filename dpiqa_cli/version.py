"""The package version, in a module of its own: every module can import it without importing the package's
`__init__` (which offers `create_scorer`)."""

__version__ = "0.1.0"
