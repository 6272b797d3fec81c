import asyncio
import time

from asyncz.schedulers import AsyncIOScheduler, NativeAsyncIOScheduler


def hello(where):
    print("hello from", where)


# Plain code, no event loop running: the scheduler runs a loop of its own in a daemon thread.
scheduler = AsyncIOScheduler()
scheduler.add_task(hello, args=["a plain script"])  # no trigger: once, now
scheduler.start()
time.sleep(0.3)
scheduler.shutdown()


# Inside asyncio: the native scheduler's start() and shutdown() are awaited.
async def main():
    scheduler = NativeAsyncIOScheduler()
    scheduler.add_task(hello, args=["a coroutine"])
    await scheduler.start()
    await asyncio.sleep(0.3)
    await scheduler.shutdown()


asyncio.run(main())
