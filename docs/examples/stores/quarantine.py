import asyncio
import tempfile

from asyncz.events import TASK_QUARANTINED
from asyncz.schedulers import AsyncIOScheduler


def report():
    print("report")


def alert(event):
    print(f"quarantined {event.task_id!r} in {event.store!r}: {event.reason[:40]}...")


async def main():
    folder = tempfile.mkdtemp()
    store = {"type": "file", "directory": folder, "signing_key": "old key"}
    first = AsyncIOScheduler(stores={"default": store})
    first.start(paused=True)
    first.add_task(report, "interval", seconds=1, id="report")
    first.shutdown()

    # Started again with another key: the record cannot be trusted, so it is set aside.
    second = AsyncIOScheduler(stores={"default": {**store, "signing_key": "new key"}})
    second.add_listener(alert, TASK_QUARANTINED)
    second.start()
    await asyncio.sleep(1.5)
    print(list(second.lookup_store("default").get_quarantined()))
    second.shutdown()

    # Give the old key too (newest first) and the task is back: nothing was deleted.
    third = AsyncIOScheduler(stores={"default": {**store, "signing_key": ["new key", "old key"]}})
    third.start(paused=True)
    print([task.id for task in third.get_tasks()])
    third.shutdown()


asyncio.run(main())
