"""Runs handed to a Dask cluster: here a LocalCluster of two workers in this process's machine;
in production `address="tcp://scheduler:8786"`, your cluster's scheduler."""

import asyncio
import os

from distributed import LocalCluster

from asyncz.events import TASK_EXECUTED
from asyncz.schedulers import AsyncIOScheduler


def area(width, height):
    return {"area": width * height, "worker pid differs": os.getpid() != parent}


parent = os.getpid()


async def main():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        scheduler = AsyncIOScheduler(
            executors={"default": {"type": "dask", "address": cluster.scheduler_address}}
        )
        done = asyncio.Event()
        loop = asyncio.get_running_loop()

        def report(event):
            # Called in the executor's thread, where the outcome arrives: wake the loop safely.
            print("executed on the cluster:", event.return_value)
            loop.call_soon_threadsafe(done.set)

        scheduler.add_listener(report, TASK_EXECUTED)
        scheduler.start()
        scheduler.add_task(area, args=[3, 4], id="area")  # no trigger: runs once, now
        await asyncio.wait_for(done.wait(), 60)
        await asyncio.to_thread(scheduler.shutdown)


if __name__ == "__main__":
    asyncio.run(main())
