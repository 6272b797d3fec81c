"""The ``celery`` executor against real Celery workers (the contract suite covers the rest):
run ids traceable into the workers' logs, references the workers refuse, a broker that is down,
outcomes a pub/sub subscription missed, Celery's time limit, and construction errors.

The 1,000-run and lost-worker tests are in ``test_celery_fleet.py``.
"""

from __future__ import annotations

import asyncio
import os.path
from pathlib import Path
from typing import Any

import pytest

from asyncz.events import TASK_ERROR, TASK_EXECUTED, TASK_STARTED
from tests.plugins.executors import celery_fleet, jobs
from tests.plugins.executors.celery_fleet import (  # noqa: F401 - fixtures
    Fleet,
    celery_rabbitmq_fleet,
    celery_redis_fleet,
)
from tests.plugins.executors.harness import Harness

pytest.importorskip("celery")

from asyncz.plugins.executors.celery import BrokerUnavailable, CeleryExecutor
from asyncz.plugins.executors.celery_worker import (
    ReferenceNotAllowed,
    install,
    is_allowed,
)


@pytest.fixture(params=["rabbitmq", "redis"])
def fleet(request: pytest.FixtureRequest) -> Fleet:
    return request.getfixturevalue(f"celery_{request.param}_fleet")  # type: ignore[no-any-return]


@pytest.fixture
def redis_fleet(request: pytest.FixtureRequest) -> Fleet:
    return request.getfixturevalue("celery_redis_fleet")  # type: ignore[no-any-return]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_run_id_is_the_celery_task_id_and_is_in_the_worker_log(fleet: Fleet) -> None:
    async def main() -> None:
        async with Harness(fleet.executor()) as h:
            task = h.scheduler.add_task(jobs.add, args=(40, 2), id="traced")
            (done,) = await h.rec.outcomes(task.id)
        assert done.code == TASK_EXECUTED and done.return_value == 42
        if fleet.broker_name == "redis":  # RPC results are messages: one reader only
            assert fleet.app.AsyncResult(done.run_id).get(timeout=10) == 42
        log = fleet.log()
        assert f"Task asyncz.run[{done.run_id}] received" in log
        assert f"asyncz run {done.run_id} of task 'add'" in log

    run(main())


def test_a_reference_outside_the_allowed_modules_is_refused_before_import(fleet: Fleet) -> None:
    async def main() -> None:
        async with Harness(fleet.executor()) as h:
            refused = await h.outcome(h.run(os.path.join, "a", "b"))
        assert refused.code == TASK_ERROR
        assert isinstance(refused.exception, ReferenceNotAllowed)
        assert "posixpath:join" in str(refused.exception)

    run(main())


def test_allowed_modules_are_modules_and_their_submodules() -> None:
    allowed = ["project.jobs"]
    assert is_allowed("project.jobs:f", allowed)
    assert is_allowed("project.jobs.daily:f", allowed)
    assert not is_allowed("project.jobs_evil:f", allowed)
    assert not is_allowed("project:f", allowed)
    assert not is_allowed("os:system", [])


def test_install_rejects_references_given_as_allowed_modules() -> None:
    from celery import Celery

    with pytest.raises(ValueError, match="module names"):
        install(Celery("x"), allowed_modules=["project.jobs:f"])


def test_a_broker_that_is_down_makes_each_run_a_task_error_with_the_reason() -> None:
    """Nothing listens on the port: every run is reported, none is dropped, and the loop
    goes on (the failed sends happen in the courier's thread)."""
    app = celery_fleet.make_app(
        "amqp://guest:guest@127.0.0.1:1//", celery_fleet.REDIS_URL, "asyncz-test-nowhere"
    )

    async def main() -> None:
        async with Harness(CeleryExecutor(app)) as h:
            tasks = [h.run(jobs.add, i, 1) for i in range(3)]
            ticks = 0
            while not all(h.rec.of(t.id) for t in tasks):
                await asyncio.sleep(0.01)  # the loop is never blocked by the broker
                ticks += 1
                assert ticks < 3000, "no outcome for runs sent to a dead broker"
            outcomes = [h.rec.of(t.id)[0] for t in tasks]
            assert h.executor.running_count == 0
        for event in outcomes:
            assert event.code == TASK_ERROR
            assert isinstance(event.exception, BrokerUnavailable)
            assert "was not sent" in str(event.exception) and event.run_id
        assert "Connection refused" in str(outcomes[0].exception) or "refused" in str(
            outcomes[0].exception.__cause__
        )

    run(main())


def test_an_outcome_the_subscription_missed_is_read_back_from_the_backend(
    redis_fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministically: every outcome pushed through Redis pub/sub is dropped on the floor
    (as a reconnect would drop it); the backend's stored result still reports the run."""
    from asyncz.plugins.executors import celery as celery_module

    connect = celery_module._Courier._connect_backend

    def lossy_connect(courier: Any) -> None:
        connect(courier)
        deliver = courier.consumer.on_message

        def drop_outcomes(meta: Any) -> None:
            if meta.get("status") == "STARTED":
                deliver(meta)

        courier.consumer.on_message = drop_outcomes

    monkeypatch.setattr(celery_module._Courier, "_connect_backend", lossy_connect)

    async def main() -> None:
        async with Harness(redis_fleet.executor(poll_interval=0.2)) as h:
            task = h.run(jobs.add, 1, 2)
            done = await h.outcome(task)
            (started,) = h.started(task)
        assert done.code == TASK_EXECUTED and done.return_value == 3
        assert started.run_id == done.run_id

    run(main())


def test_a_task_timeout_is_celerys_time_limit_on_the_worker(fleet: Fleet) -> None:
    async def main() -> None:
        # A generous grace here: the worker's own time limit must be what stops the run.
        async with Harness(fleet.executor(timeout_grace=30)) as h:
            failed = await h.outcome(h.run(jobs.sleeps, 20, timeout=0.5), timeout=20)
        assert failed.code == TASK_ERROR and isinstance(failed.exception, TimeoutError)
        assert "stopped by Celery's soft time limit" in str(failed.exception)
        assert "timeout of 0.5 s" in str(failed.exception)

    run(main())


def test_return_values_come_back_as_the_serializer_brings_them(fleet: Fleet) -> None:
    async def main() -> None:
        async with Harness(fleet.executor()) as h:
            done = await h.outcome(h.run(celery_fleet.pid_and_arg, {"a": (1, 2)}))
        pid, value = done.return_value
        assert pid != os.getpid() and value == {"a": [1, 2]}  # JSON: tuples become lists

    run(main())


def test_a_callable_without_a_reference_is_reported_not_sent(fleet: Fleet) -> None:
    async def main() -> None:
        async with Harness(fleet.executor()) as h:
            failed = await h.outcome(h.run(lambda: 1))
        assert failed.code == TASK_ERROR and isinstance(failed.exception, TypeError)
        assert "cannot be sent to a Celery worker" in str(failed.exception)
        assert not h.rec.of(failed.task_id, TASK_STARTED)

    run(main())


def test_construction_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="needs the Celery app"):
        CeleryExecutor()
    with pytest.raises(TypeError, match="not both"):
        CeleryExecutor(object(), broker_url="memory://")
    with pytest.raises(ValueError, match="timeout_grace"):
        CeleryExecutor(broker_url="memory://", timeout_grace=0)
    executor = CeleryExecutor(broker_url="memory://")  # and no result backend

    class Scheduler:
        event_loop = None

    with pytest.raises(ValueError, match="needs a result backend"):
        executor.start(Scheduler(), "default")
