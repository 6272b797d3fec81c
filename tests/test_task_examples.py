"""The tasks page's examples (examples/tasks/) run as written, single- and multi-process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "tasks"


def run(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def start(name: str, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES / name), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Traceback" not in err, err
    return out


def test_create_update_reschedule() -> None:
    out = run("create_task.py")
    assert (
        "my-func (trigger: cron[day_of_week='mon,tue,wed,thu,fri,sat,sun', hour='8', "
        "minute='1']" in out
    )
    assert "check_status (trigger: cron[day_of_week='mon-fri', hour='8-18', minute='30']" in out
    assert (
        run("update_task.py").strip()
        == "id=my-task name=my-new-task-id max_instances=5 coalesce=False"
    )
    _before, after = run("reschedule_task.py").strip().splitlines()
    assert "cron[hour='10', minute='5']" in after
    assert after.endswith(":05:00+00:00") and "10:05" in after


@pytest.mark.parametrize("name", ["lifecycle.py", "lifecycle_async.py"])
def test_lifecycle_runs_setup_ticks_and_cleanup(name: str) -> None:
    lines = run(name, "0.2", "1.1").strip().splitlines()
    assert lines[0].startswith("setup")
    assert lines[-1].startswith("cleanup")
    ticks = [line for line in lines if line.startswith("tick")]
    assert len(ticks) >= 3
    assert len(lines) == len(ticks) + 2


@pytest.mark.parametrize(
    "name", ["lifecycle_mp_tick_only_one.py", "lifecycle_mp_tick_only_one_simple.py"]
)
def test_workers_sharing_a_store_tick_once_per_tick(name: str, tmp_path: Path) -> None:
    tick = 0.25
    env = {"ASYNCZ_EXAMPLE_STORE": str(tmp_path / "store"), "ASYNCZ_EXAMPLE_LOCKS": str(tmp_path)}
    (tmp_path / "store").mkdir()
    workers = [start(name, str(tick), "2.5", env=env) for _ in range(3)]
    outputs = [finish(worker) for worker in workers]
    due = [
        float(t) for out in outputs for t in re.findall(r"ran lifecycle-tick due (\d+\.\d+)", out)
    ]
    for out in outputs:
        assert "setup" in out  # every worker sets up its own generator
        if name == "lifecycle_mp_tick_only_one.py":
            assert "cleanup" in out
    # Every scheduled tick ran in one worker only (a busy machine may run some late, or
    # coalesce them, but never twice).
    assert len(due) == len(set(due)) >= 5, sorted(due)
    ticks = [t for out in outputs for t in re.findall(r"\] tick ", out)]
    assert len(ticks) == len(due)


def test_only_one_worker_runs_the_job_and_another_takes_over(tmp_path: Path) -> None:
    env = {"ASYNCZ_EXAMPLE_LOCKS": str(tmp_path)}
    first = start("lifecycle_mp_only_one_instance.py", "job", "0.2", "1.5", env=env)
    wait_for_lock_file(tmp_path, "asyncz_bg_job_*.lock")
    second = start("lifecycle_mp_only_one_instance.py", "job", "0.2", "3.0", env=env)
    out_first, out_second = finish(first), finish(second)
    assert "got the lock" in out_first
    assert "got the lock" in out_second  # it took over after the first one stopped

    def ticks(out: str) -> list[float]:
        return [float(t) for t in re.findall(r"tick (\d+\.\d+)", out)]

    # Never both at once: every tick of the second worker comes after the first one's last.
    assert ticks(out_first) and ticks(out_second)
    assert min(ticks(out_second)) > max(ticks(out_first))
    assert out_first.rstrip().endswith("job: done")


def wait_for_lock_file(directory: Path, pattern: str) -> None:
    deadline = time.monotonic() + 20
    while not list(directory.glob(pattern)):
        assert time.monotonic() < deadline, f"no {pattern} in {directory}"
        time.sleep(0.05)


def test_only_one_instance_simple(tmp_path: Path) -> None:
    env = {"ASYNCZ_EXAMPLE_LOCKS": str(tmp_path)}
    holder = start("lifecycle_mp_only_one_instance_simple.py", "simple", "0.2", "5", env=env)
    wait_for_lock_file(tmp_path, "asyncz_bg_simple_*.lock")
    # The holder keeps the lock for its whole life; a worker running meanwhile never gets it.
    other = start("lifecycle_mp_only_one_instance_simple.py", "simple", "0.2", "1.5", env=env)
    out_other, out_holder = finish(other), finish(holder)
    assert "got the lock" in out_holder
    assert len(re.findall(r"tick", out_holder)) >= 3
    assert "got the lock" not in out_other
