"""``asyncz plugins``: every plugin alias, who provides it, and whether it can load here.

A plugin registered lazily (``"module:Class"``) is imported to find out; one whose module
cannot be imported for lack of a package is listed with the package and the extra that
installs it. The SQL store's database drivers are checked too.
"""

from __future__ import annotations

from typing import Any

import click

from asyncz.cli.utils import EXIT_FAILURE, CliError, installed, table
from asyncz.core.extras import extra_for, install_hint

__all__ = ["plugins_report", "print_plugins"]

#: the drivers of the sqlalchemy store: database -> (module, extra)
SQL_DRIVERS = {
    "postgresql": "psycopg",
    "mysql/mariadb": "pymysql",
}


#: what asyncz's own plugins import only when used: (kind, alias) -> modules
BUILTIN_NEEDS = {
    ("store", "sqlalchemy"): ("sqlalchemy",),
    ("store", "redis"): ("redis",),
}


def _missing_module(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ModuleNotFoundError) and seen.name:
            return seen.name
        seen = seen.__cause__ or seen.__context__
    return None


def _availability(provider: Any) -> tuple[str, str | None]:
    """("ok", None), ("missing", module) or ("error", message) for one provider."""
    if provider.distribution == "asyncz":
        for module in BUILTIN_NEEDS.get((provider.kind, provider.alias), ()):
            if not installed(module):
                return "missing", module
    target = provider.target
    if not isinstance(target, str):
        return "ok", None
    from asyncz.core.converters import ref_to_obj

    try:
        ref_to_obj(target)
    except Exception as exc:  # a missing dependency, or a broken plugin module
        absent = _missing_module(exc)
        if absent is not None:
            return "missing", absent
        return "error", f"{type(exc).__name__}: {exc}"
    return "ok", None


def plugins_report() -> dict[str, Any]:
    from asyncz.core.plugins import PluginRegistry
    from asyncz.exceptions import DuplicateAliasError

    registry = PluginRegistry()
    try:
        providers = registry.providers()
    except DuplicateAliasError as exc:
        raise CliError(str(exc).splitlines()[0], EXIT_FAILURE) from exc
    plugins = []
    unavailable = []
    for p in providers:
        status, detail = _availability(p)
        entry = {
            "kind": p.kind,
            "alias": p.alias,
            "target": p.target
            if isinstance(p.target, str)
            else f"{p.target.__module__}:{p.target.__qualname__}",
            "plugin": p.plugin,
            "distribution": p.distribution,
            "version": p.version,
        }
        plugins.append(entry)
        if status == "missing":
            assert detail is not None
            unavailable.append(
                {
                    "kind": p.kind,
                    "alias": p.alias,
                    "missing": detail.split(".")[0],
                    "extra": extra_for(detail),
                    "install": install_hint(detail),
                }
            )
        elif status == "error":
            unavailable.append(
                {"kind": p.kind, "alias": p.alias, "error": detail, "extra": None, "install": None}
            )
    drivers = []
    if any(p.alias == "sqlalchemy" and p.kind == "store" for p in providers):
        for database, module in SQL_DRIVERS.items():
            drivers.append(
                {
                    "store": "sqlalchemy",
                    "database": database,
                    "driver": module,
                    "installed": installed(module),
                    "install": install_hint(module),
                }
            )
    return {
        "plugins": plugins,
        "unavailable": unavailable,
        "drivers": drivers,
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


def print_plugins(report: dict[str, Any]) -> None:
    from asyncz.core.plugins import DISABLE_ENV

    missing = {(u["kind"], u["alias"]): u for u in report["unavailable"]}
    rows: list[list[Any]] = [["KIND", "ALIAS", "PROVIDED BY", "ENTRY POINT", ""]]
    for p in report["plugins"]:
        problem = missing.get((p["kind"], p["alias"]))
        note = ""
        if problem is not None:
            note = f"(needs {problem['missing']})" if problem.get("missing") else "(broken)"
        source = f"{p['distribution']} {p['version']}"
        rows.append([p["kind"], p["alias"], source, p["plugin"], note])
    click.echo(table(rows))
    if report["unavailable"]:
        click.echo("\nCannot load:")
        for u in report["unavailable"]:
            if u.get("missing"):
                click.echo(
                    f"  {u['kind']} {u['alias']!r}: needs {u['missing']!r}, not installed: "
                    f"{u['install']}"
                )
            else:
                click.echo(f"  {u['kind']} {u['alias']!r}: {u['error']}")
    absent = [d for d in report["drivers"] if not d["installed"]]
    if absent:
        click.echo("\nSQL store drivers not installed:")
        for d in absent:
            click.echo(f"  {d['database']}: {d['driver']} ({d['install']})")
    if report["failed"]:
        click.echo("\nFailed to load:")
        for f in report["failed"]:
            click.echo(f"  {f['plugin']} ({f['distribution']} {f['version']}): {f['error']}")
    if report["blocked"]:
        click.echo(f"\nBlocked by {DISABLE_ENV}: {', '.join(report['blocked'])}")
