"""The lifecycle task with an async generator: ``make_async_function`` wraps ``asend``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator

from asyncz.schedulers import NativeAsyncIOScheduler
from asyncz.utils import make_async_function


async def lifecycle_task(
    scheduler: NativeAsyncIOScheduler,
) -> AsyncGenerator[None, bool]:
    print("setup: opening the connection pool")
    scheduler.add_task(make_async_function(generator.asend), args=[False], trigger="shutdown")
    running = yield
    while running:
        print("tick: refreshing the cache")
        running = yield
    print("cleanup: closing the connection pool")


async def main(tick_seconds: float = 1.0, run_for: float = 3.5) -> None:
    global generator
    scheduler = NativeAsyncIOScheduler()
    generator = lifecycle_task(scheduler)
    await generator.asend(None)  # prime it
    scheduler.add_task(
        make_async_function(generator.asend),
        args=[True],
        trigger="interval",
        seconds=tick_seconds,
    )
    await scheduler.start()
    await asyncio.sleep(run_for)
    # Awaited: the shutdown task (an asend coroutine) runs to the end before this returns.
    await scheduler.stop()


generator: AsyncGenerator[None, bool]

if __name__ == "__main__":
    asyncio.run(main(*(float(arg) for arg in sys.argv[1:3])))
