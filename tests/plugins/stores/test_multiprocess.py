"""Several processes, each running an ``AsyncIOScheduler`` on one shared store, run every fire
exactly once — with Asyncz's ``lock_path`` and without it (then leases alone decide).

Real subprocesses, a real clock (bounded: a few seconds), runs counted in a shared file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncz.tasks import Task
from asyncz.triggers import DateTrigger, IntervalTrigger
from tests.plugins.stores import jobs
from tests.plugins.stores.backends import make_backend

UTC = timezone.utc
ROOT = Path(__file__).resolve().parents[3]
WORKERS = 3
DATE_TASKS = 15
INTERVAL_RUNS = 5

_WORKER = """
import asyncio, json, os, sys
from asyncz.schedulers import AsyncIOScheduler

store, options, stop = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]

async def main():
    scheduler = AsyncIOScheduler(stores={"default": store}, **options)
    scheduler.start()
    print("started", flush=True)
    while not os.path.exists(stop):
        await asyncio.sleep(0.05)
    scheduler.shutdown()

asyncio.run(main())
"""


@pytest.mark.parametrize("use_lock_path", [False, True], ids=["leases-only", "lock_path"])
@pytest.mark.parametrize("backend_name", ["file", "sqlite"])
def test_processes_sharing_a_store_run_each_fire_once(
    tmp_path: Path, backend_name: str, use_lock_path: bool
) -> None:
    runs = tmp_path / "runs.log"
    stop = tmp_path / "stop"
    options: dict[str, Any] = {"timezone": "UTC"}
    if use_lock_path:
        options.update(
            lock_path=str(tmp_path / "asyncz_{store}.lock"),
            startup_delay=0,
            store_retry_interval=0.1,
        )
    with make_backend(backend_name, tmp_path) as backend:
        # Tasks are added by yet another process (this one) after the workers started: they
        # only learn about them through the store, by its poll interval.
        config = backend.config(poll_interval=0.1)
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", _WORKER, json.dumps(config), json.dumps(options), str(stop)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            for _ in range(WORKERS)
        ]
        try:
            for worker in workers:
                assert worker.stdout is not None
                line = worker.stdout.readline()
                assert line == "started\n", worker.stderr.read() if worker.stderr else line
            store = backend.make()
            store.start(None, "default")
            start = datetime.now(UTC) + timedelta(seconds=0.3)
            tasks = [
                Task(
                    id=f"date-{i}",
                    fn=jobs.record_run,
                    args=(str(runs), f"date-{i}"),
                    trigger=DateTrigger(start + timedelta(seconds=0.02 * i)),
                    next_run_time=start + timedelta(seconds=0.02 * i),
                )
                for i in range(DATE_TASKS)
            ]
            interval = IntervalTrigger(
                seconds=0.1,
                start_at=start,
                end_at=start + timedelta(seconds=0.1 * (INTERVAL_RUNS - 1)),
                timezone="UTC",
            )
            tasks.append(
                Task(
                    id="interval",
                    fn=jobs.record_run,
                    args=(str(runs), "interval"),
                    trigger=interval,
                    coalesce=False,  # every fire counts, even a late one
                    next_run_time=start,
                )
            )
            store.add_tasks(tasks)
            expected = DATE_TASKS + INTERVAL_RUNS
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if runs.exists() and runs.read_text().count("\n") >= expected:
                    break
                time.sleep(0.05)
            time.sleep(0.3)  # time for a duplicate to show up, if there were one
            remaining = store.get_all_tasks()
            store.shutdown()
        finally:
            stop.touch()
            for worker in workers:
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
        for worker in workers:
            assert worker.returncode == 0, worker.stderr.read() if worker.stderr else ""
    lines = runs.read_text().splitlines() if runs.exists() else []
    counts = Counter(line.split()[0] for line in lines)
    assert counts == {**{f"date-{i}": 1 for i in range(DATE_TASKS)}, "interval": INTERVAL_RUNS}
    assert remaining == []  # every trigger exhausted, every task released and removed
