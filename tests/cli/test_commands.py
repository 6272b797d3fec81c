"""The operating commands through the real console script, on a SQLite file."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

from tests.cli.conftest import Cli


def test_version_answers_without_the_application(cli: Cli) -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("asyncz ")
    assert cli.json("version")["version"] == result.stdout.split()[1]
    # --version is answered before sayer, click or the scheduler are imported.
    probe = cli.python(
        """
        import sys
        from asyncz.cli import main
        main(["--version"])
        heavy = sorted(m for m in ("sayer", "click", "rich", "asyncz.core.scheduler")
                       if m in sys.modules)
        print(heavy)
        """
    )
    assert probe.stdout.splitlines()[-1] == "[]", probe.stdout + probe.stderr


def test_task_lifecycle_with_json_shapes(cli: Cli, sqlite: str, tmp_path: Path) -> None:
    added = cli.json(
        "add",
        "cli_jobs:echo",
        "--id",
        "report",
        "--name",
        "daily report",
        "--cron",
        "0 2 * * *",
        "--args",
        '["a", 1]',
        "--kwargs",
        '{"flag": true}',
        "--store",
        sqlite,
    )
    assert added["id"] == "report"
    task = added["task"]
    assert task["store"] == "durable" and task["trigger"] == "CronTrigger"
    assert task["trigger_alias"] == "cron" and task["state"] == "scheduled"
    assert task["args"] == ["a", 1] and task["kwargs"] == {"flag": True}
    assert task["callable_reference"] == "cli_jobs:echo"
    # Our default grace time: a late run still runs (Asyncz's is 1 s).
    assert task["mistrigger_grace_time"] is None

    listed = cli.json("list", "--store", sqlite)
    assert [t["id"] for t in listed] == ["report"]
    assert cli.json("list", "--state", "paused", "--store", sqlite) == []
    assert cli.json("list", "--trigger", "CronTrigger", "--store", sqlite)[0]["id"] == "report"
    assert cli.json("list", "--query", "daily", "--store", sqlite)[0]["id"] == "report"

    inspected = cli.json("inspect", "report", "--count", "3", "--store", sqlite)
    times = [datetime.fromisoformat(t) for t in inspected["run_times"]]
    assert inspected["returned_count"] == 3 and not inspected["exhausted"]
    assert times[1] - times[0] == timedelta(days=1)
    assert inspected["runs"] == []

    preview = cli.json("preview", "report", "--count", "2", "--store", sqlite)
    assert preview["task"]["id"] == "report" and preview["returned_count"] == 2
    assert preview["generated_at"] and preview["timezone"]

    timeline = cli.json("timeline", "--per-task", "2", "--limit", "1", "--store", sqlite)
    assert timeline["task_count"] == 1 and timeline["total_count"] == 2
    assert timeline["returned_count"] == 1 and timeline["rows"][0]["task"]["id"] == "report"

    dry = cli.json(
        "update", "report", "--name", "nightly", "--interval", "1h", "--dry-run", "--store", sqlite
    )
    assert dry["applied"] is False and dry["changed"] is True
    assert dry["diff"]["name"] == {"before": "daily report", "after": "nightly"}
    assert dry["diff"]["trigger"]["after"] == "interval[1:00:00]"
    assert cli.json("inspect", "report", "--store", sqlite)["task"]["name"] == "daily report"

    refused = cli("update", "report", "--name", "nightly", "--store", sqlite)
    assert refused.returncode == 2 and "--yes" in refused.stderr

    applied = cli.json(
        "update",
        "report",
        "--name",
        "nightly",
        "--max-instances",
        "2",
        "--mistrigger-grace-time",
        "30",
        "--interval",
        "1h",
        "--yes",
        "--store",
        sqlite,
    )
    assert applied["applied"] is True
    after = applied["after"]
    assert after["name"] == "nightly" and after["max_instances"] == 2
    assert after["mistrigger_grace_time"] == 30 and after["trigger"] == "IntervalTrigger"

    paused = cli("pause", "report", "--store", sqlite)
    assert paused.returncode == 0 and "Paused job report" in paused.stdout
    assert cli.json("list", "--state", "paused", "--store", sqlite)[0]["next_run_time"] is None
    resumed = cli.json("resume", "report", "--store", sqlite)
    assert resumed["state"] == "scheduled" and resumed["next_run_time"]

    removed = cli("remove", "report", "--store", sqlite)
    assert removed.returncode == 0 and "Removed job report" in removed.stdout
    assert cli.json("list", "--store", sqlite) == []


def test_run_runs_in_this_process_and_keeps_the_schedule(
    cli: Cli, sqlite: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran.txt"
    cli.json(
        "add",
        "cli_jobs:touch",
        "--id",
        "t",
        "--interval",
        "1h",
        "--args",
        json.dumps([str(marker)]),
        "--store",
        sqlite,
    )
    before = cli.json("list", "--store", sqlite)[0]["next_run_time"]
    ran = cli("run", "t", "--store", sqlite)
    assert ran.returncode == 0, ran.stderr
    assert "Triggered job t" in ran.stdout and "Job t succeeded" in ran.stdout
    assert marker.read_text() == "ran"
    # A manual run never consumes the schedule (see docs/cli.md).
    assert cli.json("list", "--store", sqlite)[0]["next_run_time"] == before

    cli.json("add", "cli_jobs:fail", "--id", "bad", "--interval", "1h", "--store", sqlite)
    failed = cli("run", "bad", "--store", sqlite)
    assert failed.returncode == 1
    assert "Job bad failed" in failed.stderr and "RuntimeError: boom" in failed.stderr
    outcome = json.loads(cli("run", "bad", "--json", "--store", sqlite).stdout)
    assert outcome["outcome"] == "failed" and outcome["error"] == "RuntimeError: boom"


def test_operator_commands_never_fire_due_tasks(cli: Cli, sqlite: str, tmp_path: Path) -> None:
    marker = tmp_path / "fired.txt"
    # No trigger: due at once. Only a running service may run it, not `list` or `status`.
    cli.json(
        "add",
        "cli_jobs:touch",
        "--id",
        "due",
        "--args",
        json.dumps([str(marker)]),
        "--store",
        sqlite,
    )
    for command in ("list", "status", "instances", "doctor", "timeline"):
        result = cli(command, "--store", sqlite)
        assert result.returncode == 0, (command, result.stderr)
    assert not marker.exists()
    status = cli.json("status", "--store", sqlite)
    # It stays paused: a task is due, and a command never runs one.
    assert status["state"] == "paused" and status["task_count"] == 1
    doctor = cli.json("doctor", "--store", sqlite)
    assert doctor["health"] == "ok" and "left paused" in doctor["checks"][0]["message"]
    assert not marker.exists()


def test_status_instances_and_doctor_describe_a_quiet_store(cli: Cli, sqlite: str) -> None:
    cli.json("add", "cli_jobs:noop", "--interval", "1h", "--store", sqlite)
    status = cli.json("status", "--store", sqlite)
    assert status["state"] == "running" and status["running"] is True
    assert status["stores"] == ["default", "durable"] and status["task_count"] == 1
    assert status["identity"].startswith("AsyncIOScheduler-")
    instances = cli.json("instances", "--store", sqlite)
    assert instances["scope"] == "process-local" and instances["count"] == 1
    assert instances["instances"][0]["pid"] and instances["instances"][0]["host"]
    doctor = cli("doctor", "--store", sqlite)
    assert doctor.returncode == 0
    assert "health=ok" in doctor.stdout and "store durable (sqlite:///" in doctor.stdout


def test_add_at_and_target_store(cli: Cli, tmp_path: Path) -> None:
    one = f"one=sqlite:///{tmp_path / 'one.db'}"
    two = f"two=file://{tmp_path / 'two'}"
    added = cli.json(
        "add",
        "cli_jobs:noop",
        "--at",
        "2030-01-01T10:00:00+00:00",
        "--target-store",
        "two",
        "--store",
        one,
        "--store",
        two,
    )
    assert added["task"]["store"] == "two" and added["task"]["trigger"] == "DateTrigger"
    assert added["task"]["next_run_time"].startswith("2030-01-01T10:00:00")
    assert cli.json("list", "--store", f"one=sqlite:///{tmp_path / 'one.db'}") == []
    # Stores as a JSON object (for options a URL cannot carry).
    spec = json.dumps({"type": "file", "directory": str(tmp_path / "two")})
    assert len(cli.json("list", "--store", f"two={spec}")) == 1


def test_bootstrap_uses_the_applications_scheduler(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "cli_app.py").write_text(
        "from asyncz.schedulers import AsyncIOScheduler\n"
        f"DB = {str(tmp_path / 'app.db')!r}\n"
        "def make():\n"
        "    return AsyncIOScheduler(stores={'default': "
        "{'type': 'sqlalchemy', 'url': 'sqlite:///' + DB}})\n"
    )
    added = cli(
        "add", "cli_jobs:noop", "--id", "b", "--interval", "1h", "--bootstrap", "cli_app:make"
    )
    assert added.returncode == 0, added.stderr
    listed = cli("list", "--json", "--bootstrap", "cli_app:make", "--store", "x=memory")
    assert "--store is ignored with --bootstrap" in listed.stderr
    assert [t["id"] for t in json.loads(listed.stdout)] == ["b"]
    started = cli("start", "--bootstrap", "cli_app:make")
    assert started.returncode == 0 and "Scheduler started via bootstrap." in started.stdout


def test_human_output(cli: Cli, sqlite: str) -> None:
    cli.json(
        "add",
        "cli_jobs:noop",
        "--id",
        "h1",
        "--name",
        "hello",
        "--interval",
        "5m",
        "--store",
        sqlite,
    )
    listed = cli("list", "--store", sqlite).stdout
    assert listed.splitlines()[0].split() == [
        "ID",
        "NAME",
        "STATE",
        "TRIGGER",
        "NEXT",
        "RUN",
        "STORE",
    ]
    assert "h1" in listed and "IntervalTrigger interval[0:05:00]" in listed
    inspected = cli("inspect", "h1", "--store", sqlite).stdout
    assert "callable_reference: cli_jobs:noop" in inspected and "upcoming:" in inspected
    assert "recent runs: none recorded" in inspected
    timeline = cli("timeline", "--store", sqlite).stdout
    assert timeline.splitlines()[0].split()[:3] == ["RUN", "TIME", "TASK"]
    assert "scope=process-local" in cli("instances", "--store", sqlite).stdout


def test_inspect_shows_runs_recorded_by_a_service(cli: Cli, sqlite: str, tmp_path: Path) -> None:
    cli.json("add", "cli_jobs:noop", "--id", "tick", "--interval", "1s", "--store", sqlite)
    cli.json("add", "cli_jobs:fail", "--id", "boom", "--interval", "1s", "--store", sqlite)
    service = cli.popen("start", "--standalone", "--store", sqlite)
    try:
        deadline = time.monotonic() + 30
        runs: dict[str, list[dict[str, object]]] = {"tick": [], "boom": []}
        while time.monotonic() < deadline:
            for task_id in runs:
                runs[task_id] = cli.json("inspect", task_id, "--store", sqlite)["runs"]
            if all(any(r["status"] != "started" for r in found) for found in runs.values()):
                break
            time.sleep(0.2)
        ended = {k: [r for r in v if r["status"] != "started"] for k, v in runs.items()}
        assert ended["tick"] and ended["tick"][0]["status"] == "succeeded"
        assert ended["tick"][0]["duration"] is not None
        assert ended["boom"][0]["status"] == "failed" and "boom" in ended["boom"][0]["error"]
        # The service is another scheduler on the store: `instances` sees it.
        instances = cli.json("instances", "--store", sqlite)
        assert instances["scope"] == "cluster" and instances["count"] == 2
        human = cli("inspect", "tick", "--store", sqlite).stdout
        assert "succeeded" in human and "SCHEDULED" in human
    finally:
        service.terminate()
        out, err = service.communicate(timeout=30)
    assert service.returncode == 0, err
    assert "event=succeeded task=tick" in out
    assert "event=failed task=boom" in out and "RuntimeError: boom" in out
    assert "SIGTERM: stopping; waiting for" in err and "Scheduler stopped" in err
