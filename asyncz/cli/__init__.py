"""The ``asyncz`` command.

``asyncz plugins`` prints every plugin alias by kind with the distribution that provides it, and
the plugins that failed to load or were blocked; ``--json`` prints the same as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _plugins(args: argparse.Namespace) -> int:
    from asyncz.core.plugins import DISABLE_ENV, PluginRegistry
    from asyncz.exceptions import DuplicateAliasError

    registry = PluginRegistry()
    try:
        providers = registry.providers()
    except DuplicateAliasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        document = {
            "plugins": [
                {
                    "kind": p.kind,
                    "alias": p.alias,
                    "target": p.target
                    if isinstance(p.target, str)
                    else f"{p.target.__module__}:{p.target.__qualname__}",
                    "plugin": p.plugin,
                    "distribution": p.distribution,
                    "version": p.version,
                }
                for p in providers
            ],
            "failed": [
                {
                    "plugin": f.plugin,
                    "distribution": f.distribution,
                    "version": f.version,
                    "error": f.error,
                }
                for f in registry.failures
            ],
            "blocked": list(registry.blocked),
        }
        print(json.dumps(document, indent=2))
        return 0
    rows = [("KIND", "ALIAS", "PROVIDED BY", "ENTRY POINT")]
    rows += [(p.kind, p.alias, p.source, p.plugin) for p in providers]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    if registry.failures:
        print("\nFailed to load:")
        for failure in registry.failures:
            print(f"  {failure}")
    if registry.blocked:
        print(f"\nBlocked by {DISABLE_ENV}: {', '.join(registry.blocked)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    import asyncz

    parser = argparse.ArgumentParser(prog="asyncz", description="asyncz task scheduler")
    parser.add_argument("--version", action="version", version=f"asyncz {asyncz.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plugins = commands.add_parser("plugins", help="list plugin aliases and their providers")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.set_defaults(run=_plugins)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # `asyncz plugins | head` is fine
        sys.stderr.close()
        return 0
