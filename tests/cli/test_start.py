"""``asyncz start``: log lines off a terminal, the live view on one (tmux), graceful stops,
``--config`` with ``--watch``, and ``--store`` on PostgreSQL and Redis servers."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.cli.conftest import COMMAND, Cli, wait_until
from tests.plugins.stores.backends import POSTGRES_URL, REDIS_URL, _unavailable

TASKS_FILE = """
[asyncz]
owns_tasks = true

[stores.default]
type = "sqlalchemy"
database = "sqlite:///{db}"

[[tasks]]
id = "{task_id}"
callable = "cli_jobs:touch"
args = ["{marker}"]
trigger = {{ type = "interval", seconds = 1 }}
"""


def test_start_without_foreground_options_is_a_check(cli: Cli, sqlite: str) -> None:
    result = cli("start", "--store", sqlite, "--executor", "default=asyncio")
    assert result.returncode == 0, result.stderr
    assert "Scheduler started." in result.stdout


def test_sigint_waits_for_running_tasks_and_says_so(cli: Cli, sqlite: str, tmp_path: Path) -> None:
    marker = tmp_path / "slow.txt"
    cli.json(
        "add",
        "cli_jobs:slow",
        "--id",
        "slow",
        "--args",
        json.dumps([str(marker), 1.5]),
        "--store",
        sqlite,
    )
    service = cli.popen("start", "--standalone", "--json", "--store", sqlite)
    try:
        wait_until(lambda: marker.exists() and marker.read_text() == "started")
        service.send_signal(signal.SIGINT)
        out, err = service.communicate(timeout=30)
    finally:
        if service.poll() is None:
            service.kill()
    assert service.returncode == 0, err
    assert "SIGINT: stopping; waiting for 1 running task(s): slow (running" in err
    assert marker.read_text() == "finished"  # it waited
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert {"event": "succeeded", "task": "slow"}.items() <= events[-1].items()


def test_config_with_watch_applies_changes(cli: Cli, tmp_path: Path) -> None:
    pytest.importorskip("asyncz.tasksfile")
    marker = tmp_path / "watched.txt"
    config = tmp_path / "tasks.toml"
    db = tmp_path / "service.db"
    config.write_text(TASKS_FILE.format(db=db, task_id="first", marker=marker))
    service = cli.popen("start", "--config", str(config), "--watch")
    try:
        wait_until(marker.exists)
        config.write_text(TASKS_FILE.format(db=db, task_id="second", marker=marker))
        store = f"d=sqlite:///{db}"
        wait_until(lambda: [t["id"] for t in cli.json("list", "--store", store)] == ["second"])
        config.write_text("this is not TOML [")
        time.sleep(1.5)  # a broken file is reported and the running tasks are kept
        assert [t["id"] for t in cli.json("list", "--store", store)] == ["second"]
        service.send_signal(signal.SIGTERM)
        out, err = service.communicate(timeout=30)
    finally:
        if service.poll() is None:
            service.kill()
    assert service.returncode == 0, err
    assert "1 added" in out
    assert "not applied, the running tasks are kept" in out
    assert "SIGTERM: stopping" in err


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_live_view_on_a_terminal(cli: Cli, sqlite: str, tmp_path: Path) -> None:
    marker = tmp_path / "live.txt"
    cli.json(
        "add",
        "cli_jobs:touch",
        "--id",
        "live-task",
        "--interval",
        "1s",
        "--args",
        json.dumps([str(marker)]),
        "--store",
        sqlite,
    )
    cli.json("add", "cli_jobs:fail", "--id", "failing", "--interval", "1s", "--store", sqlite)
    session = f"asyncz-test-{uuid.uuid4().hex[:8]}"
    env = " ".join(f"{k}={v!r}" for k, v in cli.env.items() if k in ("PYTHONPATH", "PATH"))
    env += " COLUMNS=160 LINES=60"  # the pane's size, whatever the tmux server inherited
    command = " ".join([*COMMAND, "start", "--standalone", "--store", f"'{sqlite}'"])
    shell = f"cd {str(tmp_path)!r} && env {env} {command}; echo EXIT=$?; sleep 60"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "60", shell], check=True
    )

    def pane() -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session],
            capture_output=True,
            text=True,
            check=False,
        ).stdout

    try:
        wait_until(lambda: "succeeded" in pane() and "failed" in pane().split("Recent")[-1])
        screen = pane()
        assert "Next runs" in screen and "Recent runs" in screen and "Instances" in screen
        assert "live-task" in screen and "interval[0:00:01]" in screen
        assert "RuntimeError: boom" in screen
        assert "tasks: 2 scheduled" in screen and "runs:" in screen
        assert "process-local" in screen
        subprocess.run(["tmux", "send-keys", "-t", session, "C-c"], check=True)
        wait_until(lambda: "EXIT=" in pane())
        screen = pane()
        assert "SIGINT: stopping; waiting for" in screen
        assert "Scheduler stopped" in screen and "EXIT=0" in screen
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def _reachable_postgres() -> str:
    import sqlalchemy as sa

    url = POSTGRES_URL
    try:
        sa.create_engine(url).connect().close()
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
    return url


def _reachable_redis() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except Exception as exc:
        _unavailable("Redis", exc)
    return REDIS_URL


@pytest.mark.services
@pytest.mark.parametrize("server", ["postgresql", "redis"])
def test_store_urls_on_real_servers(cli: Cli, server: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    if server == "postgresql":
        url = _reachable_postgres()
        # A bare postgresql:// URL works too (psycopg is the driver asyncz installs).
        bare = "postgresql://" + url.split("://", 1)[1]
        spec = json.dumps({"type": "sqlalchemy", "url": bare, "tablename": f"cli_{suffix}"})
    else:
        url = _reachable_redis()
        spec = json.dumps({"type": "redis", "url": url, "key_prefix": f"cli-{suffix}."})
    store = f"shared={spec}"
    try:
        added = cli.json(
            "add", "cli_jobs:noop", "--id", "remote", "--interval", "1m", "--store", store
        )
        assert added["task"]["store"] == "shared"
        assert [t["id"] for t in cli.json("list", "--store", store)] == ["remote"]
        assert cli("run", "remote", "--store", store).returncode == 0
        assert cli.json("pause", "remote", "--store", store)["state"] == "paused"
        assert cli.json("status", "--store", store)["task_count"] == 1
        assert cli("remove", "remote", "--store", store).returncode == 0
        assert cli.json("list", "--store", store) == []
    finally:
        if server == "postgresql":
            import sqlalchemy as sa

            engine = sa.create_engine(url)
            with engine.begin() as conn:
                for table in ("", "_runs", "_instances", "_version"):
                    conn.execute(sa.text(f'DROP TABLE IF EXISTS "cli_{suffix}{table}" CASCADE'))
            engine.dispose()
        else:
            import redis

            client = redis.Redis.from_url(url)
            keys = list(client.scan_iter(f"cli-{suffix}.*"))
            if keys:
                client.delete(*keys)


@pytest.mark.services
def test_plain_store_url_on_redis(cli: Cli) -> None:
    url = _reachable_redis()
    # The URL form (default key prefix): only read here, nothing written.
    result = cli("status", "--json", "--store", f"r={url}")
    assert result.returncode == 0, result.stderr
    assert "r" in json.loads(result.stdout)["stores"]
