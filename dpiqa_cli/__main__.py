"""`python -m dpiqa_cli`: the `dpiqa` command. A Python without dpiqa's dependencies (a source checkout run
by another interpreter) gets one `error:` line and exit 2, a problem the user can fix, not a traceback."""
import sys

try:
    from dpiqa_cli.cli import main
except ModuleNotFoundError as exc:
    print(f"error: {exc} in {sys.executable}: dpiqa's dependencies are not installed in this Python; "
          "run `pip install -e .` in the repository (or use the Python it was installed into)", file=sys.stderr)
    sys.exit(2)

main()
