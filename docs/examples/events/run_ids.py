import asyncio

from asyncz.events import TASK_EXECUTED, TASK_STARTED
from asyncz.schedulers import AsyncIOScheduler

seen = []


async def main():
    scheduler = AsyncIOScheduler()
    scheduler.add_listener(seen.append, TASK_STARTED | TASK_EXECUTED)
    scheduler.add_task(print, args=["working"], id="job")
    scheduler.start()
    await asyncio.sleep(0.2)
    scheduler.shutdown()
    started, executed = seen
    # A run's STARTED and its outcome share a run id; the outcome carries the duration.
    print(started.run_id == executed.run_id, type(executed).__name__, executed.duration >= 0)


asyncio.run(main())
