"""The executors that hand runs to a fleet, for the executor contract: each is held to it
against real workers, so its plugin alias becomes one contract parameter per fleet it supports.

* ``celery``: ``celery-rabbitmq`` (RabbitMQ broker, RPC result backend) and ``celery-redis``
  (Redis broker and result backend), each with real ``celery worker`` processes
  (:mod:`tests.plugins.executors.celery_fleet`);
* ``dask``: a ``LocalCluster`` of two worker processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.plugins.executors.celery_fleet import (
    celery_rabbitmq_fleet,
    celery_redis_fleet,
)

__all__ = ["FIXTURES", "celery_rabbitmq_fleet", "celery_redis_fleet", "dask_cluster", "expand"]

#: plugin alias -> the contract parameters that stand for it
PARAMETERS = {"celery": ["celery-rabbitmq", "celery-redis"], "dask": ["dask"]}
#: contract parameter -> the fixture that provides its fleet
FIXTURES = {
    "celery-rabbitmq": "celery_rabbitmq_fleet",
    "celery-redis": "celery_redis_fleet",
    "dask": "dask_cluster",
}


def expand(aliases: list[str]) -> list[str]:
    """``aliases`` with each fleet executor's alias replaced by its fleets' parameters."""
    return [parameter for alias in aliases for parameter in PARAMETERS.get(alias, [alias])]


def executor_factory(request: pytest.FixtureRequest, parameter: str) -> Callable[..., Any]:
    """``make_executor`` for a fleet parameter: an executor on that (running) fleet."""
    fleet = request.getfixturevalue(FIXTURES[parameter])
    if parameter == "dask":
        from asyncz.plugins.executors.dask import DaskExecutor

        return lambda alias, **options: DaskExecutor(fleet.scheduler_address, **options)
    return lambda alias, **options: fleet.executor(**options)


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, dashboard_address=":0"
    )
    try:
        yield cluster
    finally:
        cluster.close()
