"""User-facing errors: one line, no traceback, exit code 2 (see cli.main)."""


class DpiqaError(Exception):
    """A problem the user can fix (bad argument, missing file, bad checkpoint)."""

    exit_code = 2
