"""What the ``asyncz`` commands share: store and executor specifications, errors for people,
exit codes and JSON output.

Nothing here imports the scheduler, SQLAlchemy or Redis at module level: ``asyncz --help`` and
the parsing of options stay fast, and a missing driver is reported by name before anything
tries to import it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

import click

from asyncz.core.extras import install_hint

__all__ = [
    "EXIT_DEPENDENCY",
    "EXIT_FAILURE",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_USAGE",
    "CliError",
    "dump_json",
    "jsonable",
    "missing_dependency",
    "parse_executor",
    "parse_interval",
    "parse_json_option",
    "parse_store",
    "redact_url",
]

#: Exit codes (docs/cli.md lists them too).
EXIT_OK = 0
#: a check failed (``doctor`` found a problem, ``--strict`` saw a warning) or an unexpected error
EXIT_FAILURE = 1
#: a bad command line: an unknown option, a bad store URL, bad JSON, a bad trigger option
EXIT_USAGE = 2
#: an optional dependency (a store's driver) is not installed
EXIT_DEPENDENCY = 3
#: the task id names no task
EXIT_NOT_FOUND = 4
#: a store could not be reached or read (connection refused, permission denied)
EXIT_STORE = 5


class CliError(click.ClickException):
    """One line for people on stderr, and an exit code (see the ``EXIT_*`` constants)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: Any = None) -> None:
        stream = file if file is not None else sys.stderr
        click.echo(f"asyncz: error: {self.format_message()}", file=stream)


def missing_dependency(what: str, module: str) -> CliError:
    return CliError(
        f"{what} needs the {module.split('.')[0]!r} package, which is not installed: "
        f"{install_hint(module)}",
        EXIT_DEPENDENCY,
    )


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# -- stores --------------------------------------------------------------------------------

#: URL scheme (before any ``+driver``) -> (SQLAlchemy dialect, the driver asyncz installs)
_SQL_SCHEMES = {
    "sqlite": ("sqlite", None),
    "postgresql": ("postgresql", "psycopg"),
    "postgres": ("postgresql", "psycopg"),
    "mysql": ("mysql", "pymysql"),
    "mariadb": ("mariadb", "pymysql"),
}
#: SQLAlchemy driver name -> the module it imports
_SQL_DRIVER_MODULES = {
    "psycopg": "psycopg",
    "psycopg2": "psycopg2",
    "pymysql": "pymysql",
    "mysqldb": "MySQLdb",
    "pysqlite": "sqlite3",
}
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
STORE_EXAMPLES = (
    "default=memory, durable=sqlite:///tasks.db, durable=postgresql://user@host/db, "
    "durable=mysql://user@host/db, cache=redis://localhost:6379/0, "
    "durable=file:///var/lib/asyncz"
)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages and listings)."""
    return re.sub(r"(//[^:/@]+:)[^@/]*@", r"\1***@", url)


def parse_store(spec: str) -> tuple[str, dict[str, Any]]:
    """``"alias=URL"`` (or a bare URL, aliased ``default``) -> ``(alias, store config)``.

    URLs: ``memory`` / ``memory:``, ``sqlite:///path``, ``postgresql://…``, ``mysql://…``,
    ``mariadb://…`` (with or without ``+driver``), ``redis://…`` / ``rediss://…``,
    ``file:///directory``, ``mongodb://…`` (for a third-party ``mongodb`` store plugin), or a
    JSON object with ``"type"`` (the store's plugin alias) and its options.
    Raises :class:`CliError` (exit code 2) for anything else.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise CliError(f"--store needs alias=URL, e.g. {STORE_EXAMPLES}", EXIT_USAGE)
    text = spec.strip()
    alias, value = "default", text
    if not text.startswith("{"):
        head, sep, rest = text.partition("=")
        if sep and "://" not in head and ":" not in head:
            alias, value = head.strip(), rest.strip()
    if not _ALIAS.match(alias):
        raise CliError(
            f"--store {spec!r}: {alias!r} is not a store alias (letters, digits, '_', '-', '.')",
            EXIT_USAGE,
        )
    return alias, store_config(value, spec)


def store_config(value: str, spec: str | None = None) -> dict[str, Any]:
    """The store config dict for one URL (or JSON object); see :func:`parse_store`."""
    shown = spec if spec is not None else value
    if value.startswith("{"):
        try:
            config = json.loads(value)
        except json.JSONDecodeError as exc:
            raise CliError(f"--store {shown!r} is not JSON ({exc.msg})", EXIT_USAGE) from None
        if not isinstance(config, dict) or not isinstance(config.get("type"), str):
            raise CliError(
                f'--store {shown!r}: a JSON store needs a "type", e.g. '
                '{"type": "file", "directory": "/var/lib/asyncz"}',
                EXIT_USAGE,
            )
        return config
    lowered = value.lower()
    if lowered in ("memory", "memory:", "memory://"):
        return {"type": "memory"}
    scheme, sep, rest = value.partition("://")
    if not sep:
        raise CliError(
            f"--store {shown!r}: {value!r} is not a store URL; write alias=URL, e.g. "
            f"{STORE_EXAMPLES}",
            EXIT_USAGE,
        )
    base, _, driver = scheme.lower().partition("+")
    if base == "file":
        if rest.startswith("localhost/"):
            rest = rest[len("localhost") :]
        if not rest or not rest.startswith("/"):
            raise CliError(
                f"--store {shown!r}: a file store URL names an absolute directory, e.g. "
                "file:///var/lib/asyncz (three slashes)",
                EXIT_USAGE,
            )
        return {"type": "file", "directory": rest}
    if base in ("redis", "rediss", "unix"):
        return {"type": "redis", "url": value}
    if base in ("mongodb", "mongodb+srv"):
        return {"type": "mongodb", "url": value}
    if base in _SQL_SCHEMES:
        dialect, default_driver = _SQL_SCHEMES[base]
        if base == "sqlite" and not rest.startswith("/"):
            raise CliError(
                f"--store {shown!r}: a SQLite URL is sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db",
                EXIT_USAGE,
            )
        if not driver and default_driver:
            # SQLAlchemy's default PostgreSQL driver is psycopg2 and its MySQL one MySQLdb;
            # asyncz's extras install psycopg (3) and PyMySQL.
            value = f"{dialect}+{default_driver}://{rest}"
        elif base == "postgres":
            value = f"postgresql+{driver}://{rest}"
        return {"type": "sqlalchemy", "url": value}
    raise CliError(
        f"--store {shown!r}: unknown URL scheme {scheme!r}; known are memory, sqlite, "
        "postgresql, mysql, mariadb, redis, file (and mongodb with a plugin that provides it)",
        EXIT_USAGE,
    )


def store_dependencies(config: Mapping[str, Any]) -> list[str]:
    """The modules a store config needs beyond asyncz itself (for a missing-driver check)."""
    kind = config.get("type")
    if kind == "redis":
        return ["redis"]
    if kind == "sqlalchemy":
        url = str(config.get("url") or config.get("database") or "")
        scheme = url.partition("://")[0].lower()
        base, _, driver = scheme.partition("+")
        modules = ["sqlalchemy"]
        if not driver:
            driver = (_SQL_SCHEMES.get(base) or ("", None))[1] or ""
        module = _SQL_DRIVER_MODULES.get(driver)
        if module and module != "sqlite3":
            modules.append(module)
        return modules
    return []


def describe_store(config: Mapping[str, Any]) -> str:
    url = config.get("url") or config.get("database")
    if url:
        return redact_url(str(url))
    if config.get("type") == "file":
        return f"file://{config.get('directory')}"
    return str(config.get("type"))


# -- executors -----------------------------------------------------------------------------

_EXECUTOR_TYPES = {
    "asyncio": "asyncio",
    "thread": "threadpool",
    "threadpool": "threadpool",
    "pool": "threadpool",
    "process": "processpool",
    "processpool": "processpool",
    "debug": "debug",
}


def parse_executor(spec: str) -> tuple[str, dict[str, Any]]:
    """``"alias=type[:workers]"`` -> ``(alias, executor config)``; types asyncio, thread,
    process, debug (or any executor plugin alias)."""
    alias, sep, value = spec.partition("=")
    if not sep:
        alias, value = "default", spec
    alias, value = alias.strip(), value.strip()
    kind, _, workers = value.partition(":")
    if not _ALIAS.match(alias or "-") or not kind:
        raise CliError(
            f"--executor {spec!r}: write alias=type[:workers], e.g. default=asyncio, io=thread:8",
            EXIT_USAGE,
        )
    config: dict[str, Any] = {"type": _EXECUTOR_TYPES.get(kind.lower(), kind)}
    if workers:
        if not workers.isdigit() or int(workers) < 1:
            raise CliError(
                f"--executor {spec!r}: workers must be a whole number >= 1, got {workers!r}",
                EXIT_USAGE,
            )
        if config["type"] not in ("threadpool", "processpool"):
            raise CliError(
                f"--executor {spec!r}: only thread and process executors take a worker count",
                EXIT_USAGE,
            )
        config["max_workers"] = int(workers)
    return alias, config


# -- values --------------------------------------------------------------------------------


def parse_interval(text: str) -> dict[str, Any]:
    """``"10s"``, ``"5m"``, ``"2h"``, ``"1d"``, ``"1h30m"`` or plain seconds -> IntervalTrigger
    options (``seconds=…`` etc.)."""
    from asyncz.plugins.triggers.interval import parse_interval as parse

    try:
        return dict(parse(text))
    except ValueError as exc:
        raise CliError(f"--interval {exc}", EXIT_USAGE) from None


def parse_datetime(text: str, option: str = "--at") -> datetime:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"{option} {text!r} is not an ISO 8601 date-time, e.g. 2027-01-01T10:00:00+00:00",
            EXIT_USAGE,
        ) from None


def parse_json_option(text: str | None, option: str, kind: type) -> Any:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{option} {text!r} is not JSON ({exc.msg})", EXIT_USAGE) from None
    if not isinstance(value, kind):
        wanted = (
            "a JSON array, e.g. '[1, \"a\"]'"
            if kind is list
            else "a JSON object, e.g. '{\"x\": 1}'"
        )
        raise CliError(f"{option} must be {wanted}, got {text!r}", EXIT_USAGE)
    return value


# -- output --------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Plain JSON data from snapshots: datetimes in ISO 8601, enums by value, tuples as lists."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return value.value if isinstance(value.value, (str, int)) else value.name
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def dump_json(value: Any) -> None:
    click.echo(json.dumps(jsonable(value), indent=2))


def table(rows: Iterable[Iterable[Any]]) -> str:
    """Plain aligned columns (the first row is the header)."""
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    if not cells:
        return ""
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(len(cells[0]))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells
    )
