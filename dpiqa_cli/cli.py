"""The `dpiqa` command line. Thin by design: parse options, call one function per job.

Every job lives in a module named for it; this file only maps options onto calls.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import click
import typer

from dpiqa_cli import __version__
from dpiqa_cli.errors import DpiqaError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Blind image quality assessment with DP-IQA (diffusion teacher, EfficientNet student).",
)


class State:
    device: str = "auto"
    verbose: bool = False
    quiet: bool = False


state = State()

# Options shared by several commands.
DeviceOpt = Annotated[
    Optional[str],
    typer.Option("--device", help="auto|cpu|cuda[:N]|mps (default: the global --device, else auto)."),
]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Registry name (see `dpiqa models`) or a .onnx file.")]
WeightsOpt = Annotated[
    Optional[Path], typer.Option("--weights", "-w", help="Checkpoint (.safetensors + .json) to load instead of the default.")
]


def _device(value: Optional[str]) -> str:
    return value or state.device


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dpiqa {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    device: Annotated[str, typer.Option("--device", help="Default device for every command: auto|cpu|cuda[:N]|mps.")] = "auto",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More logging; tracebacks on internal errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and the final summary.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    state.device, state.verbose, state.quiet = device, verbose, quiet
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


# ---- models / import-weights (registry, checkpoints) -------------------------------------


@app.command()
def models() -> None:
    """List the model registry: parameters (counted on `meta`), input size, weights status."""
    from dpiqa_cli.registry import print_models_table

    print_models_table()


@app.command("import-weights")
def import_weights(
    src: Annotated[Path, typer.Argument(help="The authors' released PyTorch state dict (.pth/.pt).")],
    kind: Annotated[str, typer.Option("--kind", help="student|teacher")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write (.safetensors; a .json config goes beside it).")],
    model: Annotated[Optional[str], typer.Option("--model", help="Registry entry to map into (default: `student` or `teacher`).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Dataset it was trained on (sets the MOS scale), e.g. koniq.")] = None,
    embeddings: Annotated[Optional[Path], typer.Option("--embeddings", help="Teacher only: the release's prompt embeddings (.pth); default: compute them with CLIP ViT-L/14.")] = None,
    prompts: Annotated[str, typer.Option("--prompts", help="Teacher only: prompt set the embeddings belong to (paper|release).")] = "release",
) -> None:
    """Convert the authors' released state dict into a dpiqa checkpoint (read with weights_only=True)."""
    from dpiqa_cli.import_weights import import_authors_checkpoint

    path = import_authors_checkpoint(src, kind=kind, out=out, model_name=model, dataset=dataset,
                                     embeddings=embeddings, prompts=prompts, quiet=state.quiet)
    typer.echo(f"wrote {path} and {path.with_suffix('.json')}")


# ---- entry point ---------------------------------------------------------------------------


def main(argv: Optional[list[str]] = None) -> None:
    """Run the app; turn user errors into one line on stderr and exit code 2."""
    command = typer.main.get_command(app)
    try:
        rc = command.main(args=argv, prog_name="dpiqa", standalone_mode=False)
    except DpiqaError as exc:
        if state.verbose:
            logging.exception("details")
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except (click.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # an internal error: one line unless --verbose
        if state.verbose:
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (re-run with --verbose for details)", file=sys.stderr)
        sys.exit(3)
    sys.exit(rc if isinstance(rc, int) else 0)
