"""The ``asyncz`` command.

``asyncz plugins`` prints every plugin alias by kind with the distribution that provides it, and
the plugins that failed to load or were blocked; ``--json`` prints the same as JSON.

``asyncz doctor --store '{"type": "sqlalchemy", "database": "sqlite:///tasks.db"}'`` checks a
store: how many tasks it holds, and every task it cannot restore (quarantined: left in the
store, never deleted) with the reason. It exits with 1 when it found a problem.
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


def _doctor(args: argparse.Namespace) -> int:
    from asyncz.core.plugins import PluginRegistry
    from asyncz.core.scheduler import AsyncIOScheduler

    registry = PluginRegistry()
    problems = 0
    report: dict[str, object] = {"plugin_failures": [str(f) for f in registry.failures]}
    stores = []
    for number, text in enumerate(args.store or []):
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            print(
                f"error: --store {text!r} is not JSON ({exc}); write e.g. "
                '\'{"type": "file", "directory": "/var/lib/tasks"}\'',
                file=sys.stderr,
            )
            return 2
        if not isinstance(spec, dict):
            print(f'error: --store {text!r} must be a JSON object with a "type"', file=sys.stderr)
            return 2
        alias = f"store{number}"
        scheduler = AsyncIOScheduler(stores={alias: spec}, plugin_registry=registry)
        store = scheduler.lookup_store(alias)
        store.start(scheduler, alias)
        try:
            tasks = store.get_all_tasks()
            check = getattr(store, "get_quarantined", None)
            quarantined = check() if check is not None else {}
        finally:
            store.shutdown()
        problems += len(quarantined)
        stores.append(
            {
                "store": spec.get("type") or spec.get("class"),
                "tasks": len(tasks),
                "paused": sum(task.next_run_time is None for task in tasks),
                "quarantined": quarantined,
            }
        )
    report["stores"] = stores
    problems += len(registry.failures)
    if args.json:
        print(json.dumps(report, indent=2))
        return 1 if problems else 0
    for failure in registry.failures:
        print(f"plugin failed to load: {failure}")
    for entry in stores:
        print(f"store {entry['store']}: {entry['tasks']} task(s), {entry['paused']} paused")
        quarantined = entry["quarantined"]
        assert isinstance(quarantined, dict)
        for task_id, reason in sorted(quarantined.items()):
            print(f"  quarantined {task_id!r}: {reason}")
    print("no problems found" if not problems else f"{problems} problem(s) found")
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    import asyncz

    parser = argparse.ArgumentParser(prog="asyncz", description="asyncz task scheduler")
    parser.add_argument("--version", action="version", version=f"asyncz {asyncz.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plugins = commands.add_parser("plugins", help="list plugin aliases and their providers")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.set_defaults(run=_plugins)
    doctor = commands.add_parser(
        "doctor", help="check plugins and stores: tasks that cannot be restored, and why"
    )
    doctor.add_argument(
        "--store",
        action="append",
        metavar="JSON",
        help='a store config, e.g. \'{"type": "file", "directory": "/var/lib/tasks"}\' '
        "(repeatable)",
    )
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.set_defaults(run=_doctor)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # `asyncz plugins | head` is fine
        sys.stderr.close()
        return 0
