"""Errors for people: one line on stderr, a documented exit code, no traceback (but with
--debug); store URLs; missing drivers and plugins that cannot load."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from asyncz.cli.utils import (
    EXIT_DEPENDENCY,
    EXIT_NOT_FOUND,
    EXIT_STORE,
    EXIT_USAGE,
    CliError,
    parse_executor,
    parse_interval,
    parse_store,
)
from tests.cli.conftest import Cli, missing


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("asyncz: error: "), stderr
    return lines[0]


@pytest.mark.parametrize(
    ("spec", "alias", "config"),
    [
        ("memory", "default", {"type": "memory"}),
        ("cache=memory:", "cache", {"type": "memory"}),
        ("d=sqlite:///tasks.db", "d", {"type": "sqlalchemy", "url": "sqlite:///tasks.db"}),
        (
            "d=postgresql://u@h/db",
            "d",
            {"type": "sqlalchemy", "url": "postgresql+psycopg://u@h/db"},
        ),
        ("d=postgres://u@h/db", "d", {"type": "sqlalchemy", "url": "postgresql+psycopg://u@h/db"}),
        (
            "d=postgresql+psycopg2://u@h/db",
            "d",
            {"type": "sqlalchemy", "url": "postgresql+psycopg2://u@h/db"},
        ),
        ("d=mysql://u@h/db", "d", {"type": "sqlalchemy", "url": "mysql+pymysql://u@h/db"}),
        ("d=mariadb://u@h/db", "d", {"type": "sqlalchemy", "url": "mariadb+pymysql://u@h/db"}),
        ("r=redis://localhost:6379/0", "r", {"type": "redis", "url": "redis://localhost:6379/0"}),
        ("f=file:///var/lib/x", "f", {"type": "file", "directory": "/var/lib/x"}),
        ("m=mongodb://localhost/db", "m", {"type": "mongodb", "url": "mongodb://localhost/db"}),
        ('j={"type": "file", "directory": "/x"}', "j", {"type": "file", "directory": "/x"}),
        ("sqlite:///bare.db", "default", {"type": "sqlalchemy", "url": "sqlite:///bare.db"}),
    ],
)
def test_parse_store(spec: str, alias: str, config: dict[str, str]) -> None:
    assert parse_store(spec) == (alias, config)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("d=bogus", "is not a store URL"),
        ("d=ftp://host/x", "unknown URL scheme 'ftp'"),
        ("d=file://relative", "absolute directory"),
        ("d=sqlite://", "sqlite:///relative/path.db"),
        ("bad alias=memory", "is not a store alias"),
        ('d={"directory": "/x"}', 'needs a "type"'),
        ("d={nope", "is not JSON"),
    ],
)
def test_parse_store_rejects(spec: str, message: str) -> None:
    with pytest.raises(CliError) as caught:
        parse_store(spec)
    assert message in caught.value.format_message()
    assert caught.value.exit_code == EXIT_USAGE


def test_parse_executor_and_interval() -> None:
    assert parse_executor("io=thread:8") == ("io", {"type": "threadpool", "max_workers": 8})
    assert parse_executor("default=asyncio") == ("default", {"type": "asyncio"})
    assert parse_executor("cpu=process") == ("cpu", {"type": "processpool"})
    for bad in ("io=thread:0", "x=asyncio:4", "=thread"):
        with pytest.raises(CliError):
            parse_executor(bad)
    assert parse_interval("10s") == {"seconds": 10.0}
    assert parse_interval("1h30m") == {"hours": 1.0, "minutes": 30.0}
    assert parse_interval("90") == {"seconds": 90.0}
    assert parse_interval("250ms") == {"seconds": 0.25}
    for bad in ("", "3x", "0s", "1h 3"):
        with pytest.raises(CliError):
            parse_interval(bad)


def test_errors_are_one_line_with_their_exit_code(cli: Cli, sqlite: str) -> None:
    cases = [
        (["list", "--store", "d=nope"], EXIT_USAGE, "is not a store URL"),
        (["inspect", "ghost", "--store", sqlite], EXIT_NOT_FOUND, "no task with the id 'ghost'"),
        (["pause", "ghost", "--store", sqlite], EXIT_NOT_FOUND, "no task with the id 'ghost'"),
        (
            ["add", "cli_jobs:noop", "--cron", "61 * * * *", "--store", sqlite],
            EXIT_USAGE,
            "--cron '61 * * * *'",
        ),
        (
            ["add", "cli_jobs:noop", "--interval", "5s", "--at", "2030-01-01", "--store", sqlite],
            EXIT_USAGE,
            "give one of --cron, --interval and --at",
        ),
        (["add", "cli_jobs:noop", "--interval", "soon"], EXIT_USAGE, "is not an interval"),
        (["add", "cli_jobs:noop", "--args", "{}"], EXIT_USAGE, "must be a JSON array"),
        (["add", "no_such_module:fn", "--store", sqlite], EXIT_USAGE, "cannot be resolved"),
        (["list", "--store", "d=mongodb://localhost/x"], EXIT_DEPENDENCY, "'mongodb'"),
        (
            ["list", "--store", "d=redis://127.0.0.1:1/0"],
            EXIT_STORE,
            "cannot open the store 'd' (redis://127.0.0.1:1/0)",
        ),
        (
            ["list", "--store", "d=postgresql://u:secret@127.0.0.1:1/db"],
            EXIT_STORE,
            "cannot open the store 'd' (postgresql+psycopg://u:***@127.0.0.1:1/db)",
        ),
        (["list", "--bootstrap", "no_such_app:make"], EXIT_USAGE, "cannot import 'no_such_app'"),
        (["run", "on-io", "--store", sqlite], EXIT_USAGE, "add --executor io=asyncio"),
    ]
    added = cli("add", "cli_jobs:noop", "--id", "on-io", "--executor", "io", "--store", sqlite)
    assert added.returncode == 0, added.stderr
    for args, code, text in cases:
        result = cli(*args)
        line = one_line(result.stderr)
        assert result.returncode == code, (args, result.stderr)
        assert text in line, (args, line)
        assert "secret" not in line


def test_debug_shows_the_traceback(cli: Cli, sqlite: str) -> None:
    plain = cli("add", "cli_jobs:noop", "--cron", "bad cron", "--store", sqlite)
    assert "Traceback" not in plain.stderr
    debug = cli("add", "cli_jobs:noop", "--cron", "bad cron", "--store", sqlite, "--debug")
    assert debug.returncode == EXIT_USAGE
    assert "Traceback" in debug.stderr and "asyncz: error: --cron" in debug.stderr
    env = cli("inspect", "ghost", "--store", sqlite, env={"ASYNCZ_DEBUG": "1"})
    assert env.returncode == EXIT_NOT_FOUND and "Traceback" in env.stderr


@pytest.mark.parametrize(
    ("url", "hidden", "extra"),
    [
        ("postgresql://u@127.0.0.1/db", "psycopg", "postgres"),
        ("mysql://u@127.0.0.1/db", "pymysql", "mysql"),
        ("redis://127.0.0.1:6379/0", "redis", "redis"),
        ("sqlite:///x.db", "sqlalchemy", "sqlalchemy"),
    ],
)
def test_a_missing_driver_names_the_extra(cli: Cli, url: str, hidden: str, extra: str) -> None:
    result = cli.python(missing([hidden]), "list", "--store", f"d={url}")
    assert result.returncode == EXIT_DEPENDENCY, result.stderr
    line = one_line(result.stderr)
    assert f"needs the {hidden!r} package" in line
    assert f'pip install "asyncz[{extra}]"' in line


def test_plugins_says_which_cannot_load(cli: Cli) -> None:
    result = cli.python(missing(["redis", "psycopg"]), "plugins")
    assert result.returncode == 0, result.stderr
    rows = {tuple(line.split()[:2]): line for line in result.stdout.splitlines()}
    assert "(needs redis)" in rows[("store", "redis")]
    assert "(needs" not in rows[("store", "memory")]
    assert "store 'redis': needs 'redis', not installed: pip install \"asyncz[redis]\"" in (
        result.stdout
    )
    assert 'postgresql: psycopg (pip install "asyncz[postgres]")' in result.stdout
    document = json.loads(cli.python(missing(["redis"]), "plugins", "--json").stdout)
    assert {
        "kind": "store",
        "alias": "redis",
        "missing": "redis",
        "extra": "redis",
        "install": 'pip install "asyncz[redis]"',
    } in document["unavailable"]


def test_sql_store_takes_url_and_names_unknown_options(tmp_path: Path) -> None:
    from asyncz.plugins.stores.sqlalchemy.store import SQLAlchemyStore

    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert str(SQLAlchemyStore(url=url)._url) == url
    with pytest.raises(TypeError, match="not both"):
        SQLAlchemyStore(url, url=url)
    with pytest.raises(TypeError, match=r"'tabelname' \(did you mean 'tablename'\?\)"):
        SQLAlchemyStore(url=url, tabelname="x")
    SQLAlchemyStore(url=url, echo=False)  # an engine option is still passed through


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX")
def test_a_bad_bootstrap_object(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "cli_bad_app.py").write_text("thing = 42\n")
    result = cli("list", "--bootstrap", "cli_bad_app:thing")
    assert result.returncode == EXIT_USAGE
    assert "must give a scheduler" in one_line(result.stderr)
    result = cli("list", "--bootstrap", "cli_bad_app:other")
    assert "has no attribute 'other'" in one_line(result.stderr)
