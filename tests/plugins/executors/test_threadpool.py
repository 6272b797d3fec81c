"""The thread-pool executor: options, coroutines in worker threads, timeouts of threads."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from asyncz.events import TASK_ERROR, TASK_EXECUTED, TASK_MISSED
from asyncz.exceptions import MaximumInstancesError
from asyncz.executors import ThreadPoolExecutor
from asyncz.executors.pool import BasePoolExecutor
from asyncz.schedulers import AsyncIOScheduler
from tests.plugins.executors import jobs
from tests.plugins.executors.harness import Harness


def test_pool_is_the_asyncz_alias_of_threadpool() -> None:
    scheduler = AsyncIOScheduler(executors={"a": {"type": "pool"}, "b": {"type": "threadpool"}})
    assert scheduler._executors["a"].__class__ is ThreadPoolExecutor
    assert isinstance(scheduler._executors["b"], BasePoolExecutor)
    assert ThreadPoolExecutor().max_workers == 10


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        ThreadPoolExecutor(max_workers=0)
    with pytest.raises(TypeError, match=r"thread_name_prefx.*did you mean 'thread_name_prefix'"):
        ThreadPoolExecutor(pool_kwargs={"thread_name_prefx": "x"})
    with pytest.raises(TypeError, match="cancel_futures"):
        ThreadPoolExecutor(cancel_futures="yes")  # type: ignore[arg-type]


def test_a_coroutine_runs_to_completion_on_a_loop_in_the_worker_thread() -> None:
    async def main() -> Any:
        executor = ThreadPoolExecutor(max_workers=2, pool_kwargs={"thread_name_prefix": "mine"})
        async with Harness(executor) as h:
            return await h.outcome(h.run(jobs.async_where))

    done = asyncio.run(main())
    assert done.code == TASK_EXECUTED
    _, thread_name, in_loop = done.return_value
    assert thread_name.startswith("mine") and in_loop


def test_max_workers_bounds_concurrency() -> None:
    gate = threading.Event()
    running = []
    lock = threading.Lock()

    def blocks() -> None:
        with lock:
            running.append(threading.current_thread().name)
        gate.wait(10)

    async def main() -> None:
        async with Harness(ThreadPoolExecutor(max_workers=2)) as h:
            tasks = [h.run(blocks) for _ in range(4)]
            await h.rec.wait_for(lambda: len(running) >= 2)
            await asyncio.sleep(0.05)
            assert len(running) == 2, running  # the other two wait for a thread
            gate.set()
            for task in tasks:
                await h.outcome(task)

    asyncio.run(main())


def test_a_hung_thread_is_reported_at_its_timeout_and_its_late_outcome_discarded() -> None:
    gate = threading.Event()
    finished = threading.Event()

    def hangs() -> str:
        gate.wait(10)
        finished.set()
        return "late"

    async def main() -> None:
        async with Harness(ThreadPoolExecutor()) as h:
            task = h.task(hangs, timeout=0.05, max_instances=1, coalesce=False)
            from datetime import datetime, timedelta, timezone

            now = datetime.now(timezone.utc)
            h.send(task, [now - timedelta(seconds=1), now])
            outcomes = await h.rec.outcomes(task.id, 2)
            # The hung run failed with TimeoutError; the run behind it will never start.
            assert [e.code for e in outcomes] == [TASK_ERROR, TASK_MISSED]
            assert isinstance(outcomes[0].exception, TimeoutError)
            assert "abandoned" in str(outcomes[0].exception)
            await h.rec.wait_for(lambda: h.executor.running_instances(task.id) == 0)
            gate.set()
            assert await asyncio.to_thread(finished.wait, 10)
            await asyncio.to_thread(h.executor.shutdown, True)
            assert len(h.rec.of(task.id)) == 2  # nothing reported for the late return

    asyncio.run(main())


def test_cancel_futures_drops_queued_runs_but_waits_for_running_ones() -> None:
    gate = threading.Event()

    def blocks() -> str:
        gate.wait(10)
        return "done"

    async def main() -> None:
        async with Harness(ThreadPoolExecutor(max_workers=1, cancel_futures=True)) as h:
            running = h.run(blocks)
            await h.rec.wait_for(lambda: bool(h.started(running)))
            queued = h.run(jobs.add, 1, 1)
            await asyncio.sleep(0.02)  # handed to the pool, waiting for its only thread
            loop = asyncio.get_running_loop()
            loop.call_later(0.1, gate.set)
            await asyncio.to_thread(h.executor.shutdown, True)
            assert [e.code for e in h.rec.of(running.id)] == [TASK_EXECUTED]
            assert [e.code for e in h.rec.of(queued.id)] == [TASK_MISSED]
            with pytest.raises(RuntimeError, match="not running"):
                h.run(jobs.add, 1, 1)

    asyncio.run(main())


def test_overwrite_wait_replaces_the_wait_argument() -> None:
    async def main() -> None:
        async with Harness(ThreadPoolExecutor(overwrite_wait=True)) as h:
            task = h.run(jobs.sleeps, 0.1)
            await h.rec.wait_for(lambda: bool(h.started(task)))
            await asyncio.to_thread(h.executor.shutdown, False)  # waits anyway
            assert [e.code for e in h.rec.of(task.id)] == [TASK_EXECUTED]

    asyncio.run(main())


def test_instances_are_counted_per_task_not_per_executor() -> None:
    async def main() -> None:
        async with Harness(ThreadPoolExecutor()) as h:
            a = h.task(jobs.sleeps, 0.05)
            b = h.task(jobs.sleeps, 0.05)
            h.send(a)
            h.send(b)
            with pytest.raises(MaximumInstancesError):
                h.send(a)
            assert h.executor.running_instances(a.id) == 1
            assert h.executor.running_count == 2
            await h.outcome(a)
            await h.outcome(b)

    asyncio.run(main())


def test_a_thread_given_up_at_its_timeout_is_replaced_and_then_leaves() -> None:
    gate = threading.Event()

    def hangs() -> None:
        gate.wait(10)

    async def main() -> None:
        executor = ThreadPoolExecutor(max_workers=1)
        async with Harness(executor) as h:
            hung = await h.outcome(h.run(hangs, timeout=0.05))
            assert isinstance(hung.exception, TimeoutError)
            # The only thread is stuck, yet the next run does not wait for it.
            after = await h.outcome(h.run(jobs.add, 1, 1), timeout=5)
            assert after.code == TASK_EXECUTED and after.return_value == 2
            pool = executor._threads
            assert pool is not None and pool.threads == 2
            gate.set()
            # Once the hung run returns, its thread leaves: the pool is back to max_workers.
            await h.rec.wait_for(lambda: pool.threads == 1)

    asyncio.run(main())
