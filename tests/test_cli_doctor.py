"""`asyncz doctor`: a store's tasks, and the ones it cannot restore (left in place)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(code: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), str(ROOT)])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def doctor(
    store: dict[str, str], *paths: Path, json_output: bool = False
) -> subprocess.CompletedProcess[str]:
    args = ["doctor", "--store", json.dumps(store)] + (["--json"] if json_output else [])
    return run(f"from asyncz.cli import main; raise SystemExit(main({args!r}))", *paths)


def test_doctor_reports_quarantined_tasks_and_they_come_back(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "doctor_jobs.py").write_text("def report():\n    return 'ok'\n")
    store = {"type": "file", "directory": str(tmp_path / "store")}
    added = run(
        f"""
        from asyncz.schedulers import AsyncIOScheduler
        scheduler = AsyncIOScheduler(stores={{"default": {store!r}}})
        scheduler.add_task("doctor_jobs:report", "interval", hours=1, id="moved")
        scheduler.add_task("os:getcwd", "interval", hours=1, id="fine", next_run_time=None)
        scheduler.start()
        scheduler.shutdown()
    """,
        jobs,
    )
    assert added.returncode == 0, added.stderr

    # Without the module on the path (as after a refactoring), the task cannot be restored.
    broken = doctor(store)
    assert broken.returncode == 1, broken.stderr
    assert "store default (file://" in broken.stdout and ": 1 task(s), 1 paused" in broken.stdout
    assert "health=failed" in broken.stdout
    assert "quarantined 'moved':" in broken.stdout and "doctor_jobs" in broken.stdout
    report = json.loads(doctor(store, json_output=True).stdout)
    assert list(report["stores"][0]["quarantined"]) == ["moved"]

    # Fixed: the same record loads again; nothing was deleted.
    fixed = doctor(store, jobs)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert ": 2 task(s), 1 paused" in fixed.stdout
    assert "no problems found" in fixed.stdout


def test_doctor_rejects_a_store_that_is_neither_a_url_nor_json() -> None:
    result = run(
        "from asyncz.cli import main; raise SystemExit(main(['doctor', '--store', 'type=file']))"
    )
    assert result.returncode == 2
    assert "'file' is not a store URL" in result.stderr
    assert "Traceback" not in result.stderr
    bad_json = run(
        "from asyncz.cli import main; raise SystemExit(main(['doctor', '--store', '{\"type\"']))"
    )
    assert bad_json.returncode == 2
    assert "is not JSON" in bad_json.stderr
