"""The bundled default checkpoint, installed as the package data `dpiqa_cli.weights` (see pyproject.toml)."""
