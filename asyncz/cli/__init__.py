"""The ``asyncz`` command (``docs/cli.md`` documents it).

``main`` is the console script. ``asyncz --version`` is answered here without importing the
command's application (sayer, rich, click) or the scheduler, so it stays fast; everything else
is :data:`asyncz.cli.app.asyncz_cli`, a sayer application.

- :mod:`asyncz.cli.app`: the commands, their options and JSON shapes
- :mod:`asyncz.cli.session`: the scheduler a command works through; errors said for people
- :mod:`asyncz.cli.run`: ``start`` in the foreground, the live view, graceful stops
- :mod:`asyncz.cli.doctor`, :mod:`asyncz.cli.plugins`: those two reports
- :mod:`asyncz.cli.bootstrap_loader`: ``--bootstrap module:object``
- :mod:`asyncz.cli.utils`: store/executor specifications, exit codes, JSON output
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: the process's arguments); the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):
        from asyncz import __version__

        print(f"asyncz {__version__}")
        return 0
    try:
        from asyncz.cli.app import asyncz_cli
    except ModuleNotFoundError as exc:  # sayer (the cli extra) is missing
        print(
            f'asyncz: error: the command needs {exc.name!r}: pip install "asyncz[cli]"',
            file=sys.stderr,
        )
        return 3
    from asyncz.cli.bootstrap_loader import clear_bootstrap_cache

    try:
        asyncz_cli.cli.main(args=args, prog_name="asyncz", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except BrokenPipeError:  # `asyncz list | head` is fine
        sys.stderr.close()
        return 0
    finally:
        clear_bootstrap_cache()
    return 0
