"""The debug executor: inline on the scheduler's thread, in submission order."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from asyncz.events import TASK_EXECUTED
from asyncz.executors import DebugExecutor
from tests.plugins.executors.harness import Harness


def test_runs_inline_on_the_loop_thread_in_submission_order() -> None:
    order: list[str] = []
    threads: set[str] = set()

    def sync(tag: str) -> str:
        threads.add(threading.current_thread().name)
        order.append(tag)
        return tag

    async def slow_async(tag: str) -> str:
        threads.add(threading.current_thread().name)
        await asyncio.sleep(0.05)  # a later submission must still wait for this one
        order.append(tag)
        return tag

    async def main() -> list[Any]:
        async with Harness(DebugExecutor()) as h:
            tasks = [
                h.run(sync, "1"),
                h.run(slow_async, "2"),
                h.run(sync, "3"),
                h.run(slow_async, "4"),
                h.run(sync, "5"),
            ]
            return [await h.outcome(t) for t in tasks]

    outcomes = asyncio.run(main())
    assert order == ["1", "2", "3", "4", "5"]
    assert [e.return_value for e in outcomes] == order
    assert {e.code for e in outcomes} == {TASK_EXECUTED}
    assert threads == {threading.current_thread().name}
