"""The executor contract, held against every registered executor plugin alias — the built-in
ones and any third party's installed in the environment.

What every executor promises: runs start after ``send_task`` returns; each run is reported as
TASK_STARTED then exactly one of TASK_EXECUTED (with the return value) / TASK_ERROR (with the
exception, its formatted traceback and no frames kept), both with the run id and duration;
coroutines run to completion; ``max_instances`` holds per task; a run past its timeout is
reported with ``TimeoutError`` and stops counting; ``shutdown(wait=True)`` waits for running
work, also when called on the scheduler's loop thread (without deadlocking), and
``shutdown(wait=False)`` reports runs not yet started as missed; an executor starts again after
a shutdown.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncz.events import (
    TASK_ERROR,
    TASK_EXECUTED,
    TASK_MISSED,
    TASK_STARTED,
    TASK_SUBMITTED,
)
from asyncz.exceptions import MaximumInstancesError
from tests.plugins.executors import fleets, jobs
from tests.plugins.executors.fleets import (  # noqa: F401 - fixtures of the fleets
    celery_rabbitmq_fleet,
    celery_redis_fleet,
    dask_cluster,
)
from tests.plugins.executors.harness import Harness, executor_aliases, make_executor
from tests.test_example_plugin import ROOT, fake_distribution

UTC = timezone.utc
ALIASES = executor_aliases()
# Executors that hand runs to a fleet (celery, dask) are held to the contract against real
# workers: one parameter per fleet, whose fixture starts it (tests/plugins/executors/fleets.py).
ALIASES = fleets.expand(ALIASES)


def test_the_built_in_executors_are_registered() -> None:
    assert {"asyncio", "threadpool", "pool", "processpool", "debug"} <= set(ALIASES)


@pytest.fixture(params=ALIASES)
def alias(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _fleet_executor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """For a fleet parameter, ``make_executor`` makes an executor on that running fleet."""
    callspec = getattr(request.node, "callspec", None)
    parameter = callspec.params.get("alias") if callspec is not None else None
    if parameter in fleets.FIXTURES:
        factory = fleets.executor_factory(request, parameter)
        monkeypatch.setitem(globals(), "make_executor", factory)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_runs_a_function_and_reports_started_then_executed(alias: str) -> None:
    async def main() -> None:
        async with Harness(make_executor(alias)) as h:
            task = h.run(jobs.add, 2, 3)
            done = await h.outcome(task)
            (started,) = h.started(task)
        assert done.code == TASK_EXECUTED and done.return_value == 5
        assert started.run_id == done.run_id and done.run_id
        assert started.started_at is not None and done.started_at == started.started_at
        assert done.duration is not None and done.duration >= 0
        assert h.rec.events.index(started) < h.rec.events.index(done)

    run(main())


def test_runs_a_coroutine_function_to_completion(alias: str) -> None:
    async def main() -> None:
        async with Harness(make_executor(alias)) as h:
            done = await h.outcome(h.run(jobs.async_add, 20, 22))
        assert done.code == TASK_EXECUTED and done.return_value == 42

    run(main())


def test_a_failure_is_reported_with_its_traceback_and_no_frames(alias: str) -> None:
    async def main() -> None:
        async with Harness(make_executor(alias)) as h:
            failed = await h.outcome(h.run(jobs.fails, "contract"))
            async_failed = await h.outcome(h.run(jobs.async_fails, "async contract"))
        for event, message in ((failed, "contract"), (async_failed, "async contract")):
            assert event.code == TASK_ERROR
            assert isinstance(event.exception, ValueError) and str(event.exception) == message
            assert "ValueError" in event.traceback and "fails" in event.traceback
            assert event.exception.__traceback__ is None
        gc.collect()
        assert not [o for o in gc.get_objects() if isinstance(o, jobs.Marker)]

    run(main())


def test_submission_is_reported_before_the_run_starts(alias: str) -> None:
    async def main() -> None:
        async with Harness(make_executor(alias)) as h:
            task = h.scheduler.add_task(jobs.add, args=(1, 1), id="ordered")
            await h.rec.outcomes("ordered")
            codes = [e.code for e in h.rec.of(task.id, TASK_SUBMITTED | TASK_STARTED)]
        assert codes == [TASK_SUBMITTED, TASK_STARTED]

    run(main())


def test_several_run_times_run_in_order(alias: str) -> None:
    async def main() -> None:
        async with Harness(make_executor(alias)) as h:
            now = datetime.now(UTC)
            times = [now - timedelta(seconds=2), now - timedelta(seconds=1), now]
            task = h.send(h.task(jobs.add, 1, 2, coalesce=False), times)
            outcomes = await h.rec.outcomes(task.id, 3)
        assert [e.scheduled_run_time for e in outcomes] == times
        assert {e.code for e in outcomes} == {TASK_EXECUTED}
        assert len({e.run_id for e in outcomes}) == 3

    run(main())


def test_max_instances_holds_per_task(alias: str) -> None:
    async def main() -> None:
        async with Harness(make_executor(alias)) as h:
            one = h.task(jobs.sleeps, 0.05, max_instances=1)
            two = h.task(jobs.sleeps, 0.05, max_instances=2)
            h.send(one)
            with pytest.raises(MaximumInstancesError):
                h.send(one)
            h.send(two)
            h.send(two)
            with pytest.raises(MaximumInstancesError):
                h.send(two)
            await h.rec.outcomes(one.id, 1)
            await h.rec.outcomes(two.id, 2)
            await _send_when_free(h, one)  # finished runs stop counting
            assert len(await h.rec.outcomes(one.id, 2)) == 2

    run(main())


async def _send_when_free(h: Harness, task: Any, timeout: float = 10.0) -> None:
    """Send ``task`` as soon as its instance count allows (the count drops just after the
    outcome is reported)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            h.send(task)
            return
        except MaximumInstancesError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)


def test_a_run_past_its_timeout_is_reported_and_stops_counting(alias: str) -> None:
    async def main() -> None:
        async with Harness(make_executor(alias)) as h:
            slow = h.task(jobs.sleeps, 0.6, timeout=0.1, max_instances=1)
            h.send(slow)
            failed = await h.outcome(slow)
            assert failed.code == TASK_ERROR and isinstance(failed.exception, TimeoutError)
            assert "timeout of 0.1 s" in str(failed.exception)
            await _send_when_free(h, slow)  # no longer counted, whatever its thread does

            async_slow = h.task(jobs.async_sleeps, 5, timeout=0.1)
            async_failed = await h.outcome(h.send(async_slow))
            assert isinstance(async_failed.exception, TimeoutError)
            assert async_failed.duration < 4

    run(main())


def test_shutdown_with_wait_waits_for_running_work(alias: str) -> None:
    async def main() -> None:
        async with Harness(make_executor(alias)) as h:
            task = h.run(jobs.sleeps, 0.3)
            coroutine = h.run(jobs.async_sleeps, 0.3)
            await h.rec.wait_for(lambda: bool(h.started(task) and h.started(coroutine)))
            await asyncio.to_thread(h.executor.shutdown, True)
            # Both outcomes were reported before shutdown returned.
            assert [e.code for e in h.rec.of(task.id)] == [TASK_EXECUTED]
            assert [e.code for e in h.rec.of(coroutine.id)] == [TASK_EXECUTED]

    run(main())


def test_shutdown_on_the_loop_thread_does_not_deadlock(alias: str) -> None:
    async def main() -> None:
        h = Harness(make_executor(alias), isolated_event_loop=True)
        h.scheduler.start()  # its own loop, in its own thread
        try:
            loop = h.scheduler.event_loop
            task = h.run(jobs.sleeps, 0.2)
            coroutine = h.run(jobs.async_sleeps, 0.2)
            await h.rec.wait_for(lambda: bool(h.started(task) or h.started(coroutine)))

            async def shut_down() -> None:
                h.executor.shutdown(True)

            future = asyncio.run_coroutine_threadsafe(shut_down(), loop)
            await asyncio.wait_for(asyncio.wrap_future(future), 10)
            # Whatever was started is still reported, on the loop or from its worker.
            await h.rec.outcomes(task.id)
            await h.rec.outcomes(coroutine.id)
        finally:
            await asyncio.to_thread(h.scheduler.shutdown)

    run(main())


def test_shutdown_without_wait_reports_runs_not_started_as_missed(alias: str) -> None:
    async def main() -> None:
        async with Harness(make_executor(alias)) as h:
            task = h.run(jobs.add, 1, 1)
            h.executor.shutdown(wait=False)  # before the loop could start the run
            (missed,) = await h.rec.outcomes(task.id)
        assert missed.code == TASK_MISSED and not h.started(task)

    run(main())


def test_starts_again_after_shutdown(alias: str) -> None:
    async def main() -> None:
        executor = make_executor(alias)
        async with Harness(executor) as h:
            first = await h.outcome(h.run(jobs.add, 1, 2))
            await asyncio.to_thread(executor.shutdown, True)
            executor.start(h.scheduler, "default")
            second = await h.outcome(h.run(jobs.add, 3, 4))
            third = await h.outcome(h.run(jobs.async_add, 5, 6))
        assert (first.return_value, second.return_value, third.return_value) == (3, 7, 11)

    run(main())


def test_no_events_are_built_for_nobody(alias: str) -> None:
    async def main() -> None:
        async with Harness(make_executor(alias)) as h:
            h.scheduler.remove_listener(h.rec)
            built: list[Any] = []
            original = h.scheduler.dispatch_event
            h.scheduler.dispatch_event = lambda event: (built.append(event), original(event))
            done = asyncio.get_running_loop().create_future()

            def listener(event: Any) -> None:
                done.get_loop().call_soon_threadsafe(lambda: done.done() or done.set_result(event))

            h.scheduler.add_listener(listener, TASK_MISSED)
            h.run(jobs.add, 1, 1)
            h.run(jobs.async_add, 1, 1)
            h.run(jobs.fails)
            late = h.task(jobs.add, 1, 1, mistrigger_grace_time=1)
            h.send(late, [datetime.now(UTC) - timedelta(seconds=30)])
            await asyncio.wait_for(done, 10)
            await asyncio.to_thread(h.executor.shutdown, True)  # every run has finished
        # Only the event somebody listens for was ever built.
        assert [e.code for e in built] == [TASK_MISSED]

    run(main())


# -- a third party's executor, installed as a distribution, meets the same contract -----------

THIRD_PARTY = """
    import functools
    import threading

    import asyncz
    from asyncz.core.execution import BaseExecutor, Once, run_task_sync


    class PerRunThreads(BaseExecutor):
        \"\"\"A thread per submission: about the smallest executor that keeps the contract.\"\"\"

        def launch(self, task, run_times):
            release = Once(functools.partial(self.run_finished, task.id))
            threading.Thread(
                target=self._run, args=(task, run_times, release), daemon=True
            ).start()

        def _run(self, task, run_times, release):
            try:
                run_task_sync(self.scheduler, task, run_times, self.logger, release=release)
            finally:
                release()


    @asyncz.hookimpl
    def asyncz_register_executors(register):
        register("per_run_threads", PerRunThreads)
"""


def test_a_third_party_executor_is_held_to_the_same_contract(tmp_path: Path) -> None:
    """Installed the way a third party installs one, it shows up in the parametrization
    above (in a fresh interpreter: discovery happens once per process) and passes it all."""
    import textwrap

    fake_distribution(
        tmp_path,
        "asyncz-per-run-threads",
        "0.1",
        "per-run-threads = asyncz_per_run_threads",
        {"asyncz_per_run_threads": textwrap.dedent(THIRD_PARTY)},
    )
    environment = {k: v for k, v in os.environ.items() if k != "ASYNCZ_DISABLE_PLUGINS"}
    environment["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    only_it = ["-k", "per_run_threads", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", __file__, *only_it],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.search(r"(\d+) passed", result.stdout)
    contract = [name for name in globals() if name.startswith("test_")]
    # Every alias-parametrized contract test ran for the third-party alias.
    assert passed is not None and int(passed.group(1)) == len(contract) - 2, result.stdout
