"""Runs per second through the ``celery`` executor against the plain Celery loop it stands on.

    python -m benchmarks.celery_throughput [--runs 2000] [--broker rabbitmq|redis] [--rounds 3]

Starts two real Celery workers (prefork, two processes each; the test suite's fleet, see
``tests/plugins/executors/celery_fleet.py``) on a queue of their own, then, in alternating
rounds on the same fleet, measures from the first send to the last outcome:

* ``plain loop``: ``send_task`` of the generic task in a loop (what ``task.apply_async`` does),
  then every result read back through the same result backend (``ResultSet.join_native``);
* ``executor``: ``CeleryExecutor.send_task`` for each run from an ``AsyncIOScheduler``'s
  loop, until every ``TASK_EXECUTED`` has been reported (started and outcome events included);
* ``scheduler``: ``add_task`` of each run on a running scheduler (memory store), so the
  scheduler's own pass is in the measure too.

The median round of each is printed with the ratio to the plain loop. Nothing here is a test:
the numbers depend on the machine and the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from asyncz.events import TASK_ERROR, TASK_EXECUTED
from asyncz.schedulers import AsyncIOScheduler
from asyncz.tasks import Task
from tests.plugins.executors import jobs
from tests.plugins.executors.celery_fleet import Fleet

UTC = timezone.utc
REFERENCE = "tests.plugins.executors.jobs:add"


def plain_loop(fleet: Fleet, runs: int) -> float:
    from celery.result import ResultSet

    app = fleet.app
    meta = {"task": "add", "task_id": "plain", "timeout": None}
    start = time.perf_counter()
    results = [
        app.send_task("asyncz.run", args=(REFERENCE, [i, 1], {}, meta), queue=fleet.queue)
        for i in range(runs)
    ]
    values = ResultSet(results).join_native(timeout=300)
    elapsed = time.perf_counter() - start
    assert values == [i + 1 for i in range(runs)]
    return elapsed


class _Counter:
    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.count = 0
        self.errors = 0
        self.done = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self.lock:
            self.count += 1
            self.errors += event.code == TASK_ERROR
            if self.count >= self.runs:
                self.done.set()


def through_asyncz(fleet: Fleet, runs: int, via_scheduler: bool) -> float:
    async def main() -> float:
        executor = fleet.executor()
        scheduler = AsyncIOScheduler(timezone="UTC", executors={"default": executor})
        counter = _Counter(runs)
        scheduler.add_listener(counter, TASK_EXECUTED | TASK_ERROR)
        scheduler.start()
        try:
            now = datetime.now(UTC)
            tasks = [Task(fn=jobs.add, args=(i, 1), id=f"b{i}") for i in range(runs)]
            start = time.perf_counter()
            if via_scheduler:
                for task in tasks:
                    scheduler.add_task(jobs.add, args=task.args, id=task.id)
            else:
                for task in tasks:
                    executor.send_task(task, [now])
            await asyncio.to_thread(counter.done.wait, 300)
            elapsed = time.perf_counter() - start
        finally:
            await asyncio.to_thread(scheduler.shutdown)
        assert counter.count == runs and not counter.errors, (counter.count, counter.errors)
        return elapsed

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--broker", choices=["rabbitmq", "redis"], default="rabbitmq")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        fleet = Fleet(options.broker, Path(folder), workers=2)
        try:
            plain_loop(fleet, 200)  # warm up the workers and the connections
            times: dict[str, list[float]] = {"plain loop": [], "executor": [], "scheduler": []}
            for _ in range(options.rounds):
                times["plain loop"].append(plain_loop(fleet, options.runs))
                times["executor"].append(through_asyncz(fleet, options.runs, False))
                times["scheduler"].append(through_asyncz(fleet, options.runs, True))
        finally:
            fleet.stop()
    base = options.runs / statistics.median(times["plain loop"])
    print(
        f"{options.runs} runs x {options.rounds} rounds, broker {options.broker} "
        f"(result backend {fleet.backend}), 2 workers x 2 processes; median round:"
    )
    for name, rounds in times.items():
        rate = options.runs / statistics.median(rounds)
        every = ", ".join(f"{options.runs / t:,.0f}" for t in rounds)
        print(f"  {name:<11} {rate:8,.0f} runs/s  ({rate / base:.0%} of the plain loop; {every})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
