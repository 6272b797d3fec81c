"""The ``dask`` executor on a real ``LocalCluster`` (the contract suite covers the rest): runs
happen in the workers' processes keyed by their run id, a given client is used and left open,
a worker that dies is reported, a run past its timeout is given up on."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest

from asyncz.events import TASK_ERROR, TASK_EXECUTED, TASK_STARTED
from tests.plugins.executors import celery_fleet, jobs
from tests.plugins.executors.fleets import dask_cluster  # noqa: F401 - fixture
from tests.plugins.executors.harness import Harness

pytest.importorskip("distributed")

from asyncz.plugins.executors.dask import DaskExecutor


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Any:
    """The session's two-worker LocalCluster."""
    return request.getfixturevalue("dask_cluster")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_runs_in_a_worker_process_under_its_run_id(cluster: Any) -> None:
    from distributed import Client

    async def main() -> None:
        async with Harness(DaskExecutor(cluster.scheduler_address)) as h:
            task = h.run(celery_fleet.pid_and_arg, (1, 2))
            done = await h.outcome(task)
            (started,) = h.started(task)
        assert done.code == TASK_EXECUTED and started.run_id == done.run_id
        pid, value = done.return_value
        assert pid != os.getpid() and value == (1, 2)  # pickled: a tuple stays a tuple
        assert done.duration is not None and done.duration >= 0
        return done.run_id

    run_id = run(main())
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        # The run's key was the run id (released since: it is no longer in memory).
        assert run_id not in client.who_has()


def test_a_given_client_is_used_and_left_open(cluster: Any) -> None:
    from distributed import Client

    client = Client(cluster.scheduler_address, set_as_default=False)
    try:

        async def main() -> None:
            async with Harness(DaskExecutor(client=client)) as h:
                done = await h.outcome(h.run(jobs.add, 1, 2))
            assert done.return_value == 3

        run(main())
        assert client.status == "running"
        assert client.submit(jobs.add, 2, 2).result(timeout=10) == 4
    finally:
        client.close()


@pytest.fixture
def fragile_cluster() -> Iterator[Any]:
    """One worker, and a run whose worker dies is not tried again: Dask reports it at once."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    try:
        yield cluster
    finally:
        cluster.close()


def test_a_run_whose_worker_dies_is_reported(fragile_cluster: Any) -> None:
    async def main() -> None:
        async with Harness(DaskExecutor(fragile_cluster.scheduler_address)) as h:
            task = h.run(jobs.kills_itself)
            died = await h.outcome(task, timeout=30)
            assert died.code == TASK_ERROR
            assert type(died.exception).__name__ == "KilledWorker"
            # The nanny's new worker takes the next run.
            after = await h.outcome(h.run(jobs.add, 2, 2), timeout=30)
            assert after.return_value == 4

    run(main())


def test_a_run_past_its_timeout_is_given_up_and_stops_counting(cluster: Any) -> None:
    async def main() -> None:
        executor = DaskExecutor(cluster.scheduler_address, timeout_grace=0.2)
        async with Harness(executor) as h:
            task = h.run(jobs.sleeps, 3, timeout=0.2, max_instances=1)
            failed = await h.outcome(task)
            assert failed.code == TASK_ERROR and isinstance(failed.exception, TimeoutError)
            assert "Dask cannot stop a running function" in str(failed.exception)
            assert h.executor.running_instances(task.id) == 0
            assert [e.code for e in h.rec.of(task.id, TASK_STARTED)] == [TASK_STARTED]

    run(main())


def test_construction_says_what_is_missing() -> None:
    with pytest.raises(TypeError, match="needs the cluster"):
        DaskExecutor()
    with pytest.raises(TypeError, match="needs the cluster"):
        DaskExecutor("tcp://127.0.0.1:1", client=object())
    with pytest.raises(TypeError, match="submit_options"):
        DaskExecutor("tcp://127.0.0.1:1", submit_options=[1])


def test_a_cluster_that_cannot_be_reached_makes_the_run_a_task_error() -> None:
    async def main() -> None:
        executor = DaskExecutor("tcp://127.0.0.1:1", client_kwargs={"timeout": 1})
        async with Harness(executor) as h:
            failed = await h.outcome(h.run(jobs.add, 1, 1), timeout=30)
        assert failed.code == TASK_ERROR and isinstance(failed.exception, ConnectionError)
        assert "was not submitted to the Dask cluster" in str(failed.exception)

    run(main())
