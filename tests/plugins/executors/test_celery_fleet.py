"""The ``celery`` executor at fleet scale on RabbitMQ: many runs through two workers, each
executed exactly once with every outcome reported, and workers killed in the middle of a run.

``ASYNCZ_CELERY_RUNS`` sets how many runs the volume test sends (default 1,000).
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncz.events import TASK_ERROR, TASK_EXECUTED, TASK_STARTED, TASK_SUBMITTED
from tests.plugins.executors import celery_fleet
from tests.plugins.executors.celery_fleet import Fleet, start_fleet
from tests.plugins.executors.harness import Harness

pytest.importorskip("celery")

from asyncz.plugins.executors.celery import WorkerLost

RUNS = int(os.environ.get("ASYNCZ_CELERY_RUNS", "1000"))
ALL = TASK_SUBMITTED | TASK_STARTED | TASK_EXECUTED | TASK_ERROR


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[Fleet]:
    yield from start_fleet("rabbitmq", tmp_path, workers=2)


@pytest.fixture
def two_workers_acks_late(tmp_path: Path) -> Iterator[Fleet]:
    yield from start_fleet("rabbitmq", tmp_path, workers=2, acks_late=True)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_runs_through_two_workers_each_executed_once_every_outcome_reported(
    two_workers: Fleet, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"

    async def main() -> None:
        async with Harness(two_workers.executor()) as h:
            for i in range(RUNS):
                h.scheduler.add_task(
                    celery_fleet.count_into, args=(str(ledger), f"r{i}"), id=f"r{i}"
                )
            await h.rec.wait_for(
                lambda: sum(e.code in (TASK_EXECUTED, TASK_ERROR) for e in h.rec.events) >= RUNS,
                timeout=120,
            )
            events = list(h.rec.events)
        by_task: dict[str, list[int]] = collections.defaultdict(list)
        run_ids: dict[str, set[str]] = collections.defaultdict(set)
        for event in events:
            if event.code & ALL:
                by_task[event.task_id].append(event.code)
                if event.code != TASK_SUBMITTED:
                    run_ids[event.task_id].add(event.run_id)
        assert len(by_task) == RUNS
        for task_id, codes in by_task.items():
            assert codes == [TASK_SUBMITTED, TASK_STARTED, TASK_EXECUTED], (task_id, codes)
            assert len(run_ids[task_id]) == 1
        # Executed exactly once each, across both workers' processes.
        counted = collections.Counter(ledger.read_text().split())
        assert counted == collections.Counter(f"r{i}" for i in range(RUNS))
        # Every run id is in the worker logs, and both workers took a share.
        logs = {host: two_workers.log(host) for host in two_workers.logs}
        received = {
            host: set(re.findall(r"Task asyncz\.run\[([0-9a-f-]+)\] received", text))
            for host, text in logs.items()
        }
        every = set().union(*received.values())
        assert {next(iter(ids)) for ids in run_ids.values()} <= every
        assert all(received.values()), "one worker took no run"

    run(main())


async def _started_on(fleet: Fleet, h: Harness, task: Any) -> tuple[str, str]:
    """The run id of ``task``'s run and the worker running it (from the workers' logs)."""
    await h.rec.wait_for(lambda: bool(h.started(task)), timeout=30)
    run_id = h.started(task)[0].run_id
    for host in fleet.logs:
        if f"asyncz run {run_id}" in fleet.log(host):
            return run_id, host
    raise AssertionError(f"run {run_id} is in no worker's log")


def test_a_killed_worker_loses_its_run_without_acks_late_and_that_is_reported(
    two_workers: Fleet, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"

    async def main() -> None:
        executor = two_workers.executor(worker_check_interval=0.3, worker_lost_after=1.5)
        async with Harness(executor) as h:
            task = h.run(celery_fleet.sleep_then_count, str(ledger), "slow", 30)
            run_id, host = await _started_on(two_workers, h, task)
            two_workers.kill(host)
            (lost,) = await h.rec.outcomes(task.id, timeout=30)
            # The fleet goes on: the other worker takes the next run.
            after = await h.outcome(h.run(celery_fleet.pid_and_arg, 1), timeout=30)
        assert lost.code == TASK_ERROR and lost.run_id == run_id
        assert isinstance(lost.exception, WorkerLost)
        assert host in str(lost.exception) and "acks_late is off" in str(lost.exception)
        assert after.code == TASK_EXECUTED
        assert not ledger.exists()  # the killed run never finished anywhere

    run(main())


def test_a_killed_worker_s_run_is_redelivered_with_acks_late_and_reported_once(
    two_workers_acks_late: Fleet, tmp_path: Path
) -> None:
    fleet = two_workers_acks_late
    ledger = tmp_path / "ledger"

    async def main() -> None:
        executor = fleet.executor(worker_check_interval=0.3, worker_lost_after=1.5)
        async with Harness(executor) as h:
            task = h.run(celery_fleet.sleep_then_count, str(ledger), "slow", 1.0)
            run_id, host = await _started_on(fleet, h, task)
            fleet.kill(host)
            (done,) = await h.rec.outcomes(task.id, timeout=60)
            codes = [e.code for e in h.rec.of(task.id, ALL)]
        assert done.code == TASK_EXECUTED and done.run_id == run_id
        assert codes == [TASK_STARTED, TASK_EXECUTED]  # one start reported, one outcome
        (other,) = [name for name in fleet.logs if name != host]
        assert f"asyncz run {run_id}" in fleet.log(other)  # redelivered to the other worker
        assert ledger.read_text().split() == ["slow"]

    run(main())
