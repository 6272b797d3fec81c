"""The process-pool executor: references, dead workers, timeouts, logging — every test once
with spawned workers and once with workers forked by the fork helper."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from typing import Any

import pytest

from asyncz.events import TASK_ERROR, TASK_EXECUTED, TASK_STARTED
from asyncz.executors import ProcessPoolExecutor, WorkerProcessDied
from asyncz.plugins.executors import processpool
from tests.plugins.executors import jobs
from tests.plugins.executors.harness import Harness


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(autouse=True, params=["spawn", processpool.FORK_HELPER])
def start_method(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the default pool starts workers (the choice itself: test_processpool_start)."""
    method: str = request.param
    if method == processpool.FORK_HELPER and not processpool.can_fork():
        pytest.skip("this platform cannot fork")
    monkeypatch.setattr(processpool, "choose_start_method", lambda requested=None: method)
    return method


def test_workers_are_other_processes(start_method: str) -> None:
    executor = ProcessPoolExecutor(max_workers=2)

    async def main() -> None:
        async with Harness(executor) as h:
            assert executor.start_method == start_method
            done = await h.outcome(h.run(jobs.where))
            async_done = await h.outcome(h.run(jobs.async_where))
        pid, _, in_loop = done.return_value
        assert pid != os.getpid() and not in_loop
        # A worker forked from a thread running an event loop must not think one runs there.
        assert async_done.return_value[0] != os.getpid() and async_done.return_value[2]

    run(main())


def test_options_are_validated() -> None:
    with pytest.raises(TypeError, match=r"max_task_per_child.*did you mean"):
        ProcessPoolExecutor(pool_kwargs={"max_task_per_child": 3})
    with pytest.raises(ValueError, match="max_tasks_per_child"):
        ProcessPoolExecutor(pool_kwargs={"max_tasks_per_child": 0})
    with pytest.raises(TypeError, match="initializer"):
        ProcessPoolExecutor(pool_kwargs={"initializer": 3})
    with pytest.raises(ValueError, match="cannot find context"):
        ProcessPoolExecutor(pool_kwargs={"mp_context": "teleport"})


@pytest.mark.parametrize(
    ("job", "reported"),
    [
        (jobs.kills_itself, "signal SIGKILL"),
        (jobs.segfaults, "signal SIGSEGV"),
        (functools.partial(jobs.exits, 7), "exit code 7"),
    ],
    ids=["killed", "segfault", "os._exit"],
)
def test_a_dead_worker_fails_only_its_run_and_is_replaced(job: Any, reported: str) -> None:
    async def main() -> None:
        async with Harness(ProcessPoolExecutor(max_workers=2)) as h:
            slow = h.run(jobs.sleeps, 0.5)  # held by the other worker meanwhile
            died = await h.outcome(h.run(job))
            after = [await h.outcome(h.run(jobs.pid)) for _ in range(3)]
            slow_done = await h.outcome(slow)
        assert died.code == TASK_ERROR and isinstance(died.exception, WorkerProcessDied)
        assert reported in str(died.exception) and died.run_id
        assert died.exception.exitcode is not None
        # The run the other worker held was not affected, and later runs proceed.
        assert slow_done.code == TASK_EXECUTED and slow_done.return_value == 0.5
        assert {e.code for e in after} == {TASK_EXECUTED}

    run(main())


def test_a_run_past_its_timeout_has_its_worker_killed() -> None:
    async def main() -> None:
        async with Harness(ProcessPoolExecutor(max_workers=1)) as h:
            worker = (await h.outcome(h.run(jobs.pid))).return_value
            failed = await h.outcome(h.run(jobs.sleeps, 30, timeout=0.2))
            assert isinstance(failed.exception, TimeoutError)
            assert "worker process was killed" in str(failed.exception)
            assert failed.duration < 10
            await h.rec.wait_for(lambda: not alive(worker))
            replacement = await h.outcome(h.run(jobs.pid))
            assert replacement.return_value != worker

    run(main())


def test_tasks_travel_by_reference_with_partials_and_coroutines() -> None:
    async def main() -> None:
        async with Harness(ProcessPoolExecutor(max_workers=1)) as h:
            partial = await h.outcome(h.run(functools.partial(jobs.add, 40), 2))
            keywords = await h.outcome(h.run(functools.partial(jobs.add, b=1), 1))
            coroutine = await h.outcome(h.run(jobs.async_add, 1, 2))
            lambda_ = await h.outcome(h.run(lambda: 1))
            unpicklable_arg = await h.outcome(h.run(jobs.add, jobs.threading.Lock(), 1))
            unpicklable_result = await h.outcome(h.run(jobs.returns_unpicklable))
            still_fine = await h.outcome(h.run(jobs.add, 1, 1))
        assert (partial.return_value, keywords.return_value, coroutine.return_value) == (42, 2, 3)
        assert isinstance(lambda_.exception, ValueError) and "lambda" in str(lambda_.exception)
        assert isinstance(unpicklable_arg.exception, TypeError)
        assert "arguments cannot be sent" in str(unpicklable_arg.exception)
        assert isinstance(unpicklable_result.exception, TypeError)
        assert "cannot be sent back" in str(unpicklable_result.exception)
        assert still_fine.return_value == 2

    run(main())


def test_worker_errors_carry_the_worker_traceback() -> None:
    async def main() -> Any:
        async with Harness(ProcessPoolExecutor(max_workers=1)) as h:
            return await h.outcome(h.run(jobs.fails, "far away"))

    failed = run(main())
    assert isinstance(failed.exception, ValueError) and str(failed.exception) == "far away"
    assert 'jobs.py", line' in failed.traceback and "raised in worker process" in failed.traceback


def test_worker_logging_reaches_the_parents_loggers(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> Any:
        async with Harness(ProcessPoolExecutor(max_workers=1)) as h:
            return await h.outcome(h.run(jobs.logs, "tests.worker.logger", "hello parent"))

    with caplog.at_level(logging.INFO, logger="tests.worker.logger"):
        done = run(main())
    (record,) = [r for r in caplog.records if r.name == "tests.worker.logger"]
    assert record.getMessage().startswith("hello parent from pid")
    assert record.process != os.getpid() and record.levelno == logging.WARNING
    assert done.return_value == "hello parent"


def test_max_tasks_per_child_replaces_workers() -> None:
    async def main() -> list[int]:
        executor = ProcessPoolExecutor(max_workers=1, pool_kwargs={"max_tasks_per_child": 2})
        async with Harness(executor) as h:
            return [(await h.outcome(h.run(jobs.pid))).return_value for _ in range(4)]

    pids = run(main())
    assert pids[0] == pids[1] != pids[2] == pids[3]


def test_many_submissions_one_by_one_never_stall() -> None:
    """Each submission wakes the supervisor; a lost wake-up would leave runs waiting forever."""

    async def main() -> None:
        async with Harness(ProcessPoolExecutor(max_workers=2)) as h:
            tasks = []
            for _ in range(300):
                tasks.append(h.run(jobs.add, 1, 1))
                await asyncio.sleep(0)
            for task in tasks:
                assert (await h.outcome(task, timeout=20)).return_value == 2

    run(main())


@pytest.fixture
def sent_ahead(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The tasks of the runs the supervisor sent to a busy worker, in order.

    Every run counts as short here, however slow the machine: these tests are about what
    happens to runs sent ahead, not about which runs are short enough."""
    monkeypatch.setattr(processpool, "SEND_AHEAD_BELOW_SECONDS", 1.0)
    tasks: list[Any] = []
    choose = processpool._Supervisor._send_ahead_to

    def spy(self: Any, job: Any) -> Any:
        worker = choose(self, job)
        if worker is not None:
            tasks.append(job.task)
        return worker

    monkeypatch.setattr(processpool._Supervisor, "_send_ahead_to", spy)
    return tasks


def test_short_runs_are_sent_ahead_and_still_reported_one_at_a_time(sent_ahead: list[Any]) -> None:
    async def main() -> list[Any]:
        async with Harness(ProcessPoolExecutor(max_workers=1)) as h:
            await h.outcome(h.run(jobs.pid))  # the first run imports the task's module
            plain = [h.run(jobs.add, i, 1) for i in range(30)]
            timed = [h.run(jobs.add, i, 2, timeout=5) for i in range(5)]
            for i, task in enumerate(plain):
                assert (await h.outcome(task)).return_value == i + 1
            for i, task in enumerate(timed):
                assert (await h.outcome(task)).return_value == i + 2
            return list(h.rec.events)

    events = run(main())
    assert sent_ahead, "no run was sent ahead to the busy worker"
    # A run with a timeout is never sent ahead: its time must count from its start.
    assert all(task.timeout is None for task in sent_ahead)
    # One worker: the events show one run at a time, each started after the last one ended.
    running: set[str] = set()
    for event in events:
        if event.code == TASK_STARTED:
            assert not running, f"{event.task_id} started while {running} ran"
            running.add(event.task_id)
        elif event.code & (TASK_EXECUTED | TASK_ERROR):
            running.discard(event.task_id)


def test_a_run_sent_ahead_of_a_dying_run_goes_to_the_next_worker(sent_ahead: list[Any]) -> None:
    async def main() -> None:
        async with Harness(ProcessPoolExecutor(max_workers=1)) as h:
            # The first run imports the task's module; the second is a short one.
            first = (await h.outcome(h.run(jobs.pid))).return_value
            await h.outcome(h.run(jobs.pid))
            dying = h.run(jobs.sleeps_then_kills_itself, 0.3)
            behind = h.run(jobs.pid)
            died = await h.outcome(dying)
            ran = await h.outcome(behind)
            assert [task.id for task in sent_ahead] == [behind.id]
            assert isinstance(died.exception, WorkerProcessDied)
            # It never started on the dead worker: it ran once, on its replacement.
            assert ran.code == TASK_EXECUTED and ran.return_value != first
            assert len(h.started(behind)) == 1

    run(main())


def test_nothing_is_sent_ahead_of_a_worker_whose_last_run_was_long(
    sent_ahead: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processpool, "SEND_AHEAD_BELOW_SECONDS", 0.01)

    async def main() -> None:
        async with Harness(ProcessPoolExecutor(max_workers=1)) as h:
            await h.outcome(h.run(jobs.sleeps, 0.05))
            slow = h.run(jobs.sleeps, 0.2)
            waiting = h.run(jobs.pid)
            await h.outcome(slow)
            assert (await h.outcome(waiting)).code == TASK_EXECUTED

    run(main())
    assert sent_ahead == []
