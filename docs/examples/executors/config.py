import asyncio
import os

from asyncz.schedulers import AsyncIOScheduler


def crunch_numbers():
    print("crunched in a worker process:", os.getpid() != PARENT)


PARENT = os.getpid()


async def main():
    scheduler = AsyncIOScheduler(
        executors={
            "default": {"type": "asyncio"},
            "threads": {"type": "threadpool", "max_workers": 20},
            "cpu": {"type": "processpool", "max_workers": 2},
        }
    )
    scheduler.start()
    scheduler.add_task(crunch_numbers, executor="cpu", timeout=120)
    await asyncio.sleep(3)
    scheduler.shutdown()


if __name__ == "__main__":  # process-pool workers import this module again: keep the guard
    asyncio.run(main())
