"""The asyncio executor: where each kind of callable runs, and robust async detection."""

from __future__ import annotations

import asyncio
import functools
import threading
import warnings
from typing import Any

from asyncz.events import TASK_ERROR, TASK_EXECUTED
from asyncz.executors import AsyncIOExecutor
from tests.plugins.executors import jobs
from tests.plugins.executors.harness import Harness


def test_coroutines_run_on_the_loop_and_functions_in_threads() -> None:
    async def main() -> None:
        async with Harness(AsyncIOExecutor(max_workers=2)) as h:
            on_loop = await h.outcome(h.run(jobs.async_where))
            in_thread = await h.outcome(h.run(jobs.where))
        assert on_loop.return_value[1] == threading.current_thread().name
        assert in_thread.return_value[1].startswith("asyncz-default")
        assert in_thread.return_value[2] is False  # no loop in the worker thread

    asyncio.run(main())


def test_async_detection_sees_through_partials_callables_and_decorators() -> None:
    async def main() -> None:
        loop_thread = threading.current_thread().name
        async with Harness(AsyncIOExecutor()) as h:
            partial = h.run(functools.partial(jobs.async_add, 40), 2)
            nested = h.run(functools.partial(functools.partial(jobs.async_add), 1, 1))
            callable_object = h.run(jobs.AsyncCallable(), 4)
            decorated = h.run(jobs.decorated_async, 1)
            hidden = h.run(jobs.hidden_async, 3, 4)
            results = {t.id: await h.outcome(t) for t in (partial, nested, callable_object)}
            results[decorated.id] = await h.outcome(decorated)
            results[hidden.id] = await h.outcome(hidden)
        assert [results[t.id].return_value for t in (partial, nested, callable_object)] == [
            42,
            2,
            40,
        ]
        assert results[decorated.id].return_value == 101
        # Hidden behind a decorator without functools.wraps: called in a thread, and the
        # coroutine it returns is awaited on the scheduler's loop, never dropped.
        assert results[hidden.id].code == TASK_EXECUTED and results[hidden.id].return_value == 7
        assert loop_thread

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # "coroutine ... was never awaited"
        asyncio.run(main())


def test_a_coroutine_past_its_timeout_is_cancelled() -> None:
    cancelled = threading.Event()

    async def waits_forever() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def main() -> Any:
        async with Harness(AsyncIOExecutor()) as h:
            return await h.outcome(h.run(waits_forever, timeout=0.05))

    failed = asyncio.run(main())
    assert failed.code == TASK_ERROR and isinstance(failed.exception, TimeoutError)
    assert "cancelled" in str(failed.exception) and cancelled.is_set()


def test_a_task_raising_its_own_timeout_error_is_not_mistaken_for_a_timeout() -> None:
    async def raises() -> None:
        raise TimeoutError("the remote end")

    async def main() -> Any:
        async with Harness(AsyncIOExecutor()) as h:
            return await h.outcome(h.run(raises, timeout=5))

    failed = asyncio.run(main())
    assert str(failed.exception) == "the remote end"


def test_max_workers_is_validated() -> None:
    import pytest

    for bad in (0, -1, True, "2"):
        with pytest.raises(ValueError, match="max_workers"):
            AsyncIOExecutor(max_workers=bad)  # type: ignore[arg-type]
