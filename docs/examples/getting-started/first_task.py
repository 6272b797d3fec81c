import asyncio

from asyncz.schedulers import AsyncIOScheduler


def tick(name):
    print("tick from", name)


async def main():
    scheduler = AsyncIOScheduler()
    scheduler.add_task(tick, "interval", seconds=1, args=["interval"])
    scheduler.add_task(tick, "date", args=["once, now"])  # a date without run_at: now
    scheduler.start()
    await asyncio.sleep(2.5)
    scheduler.shutdown()


asyncio.run(main())
