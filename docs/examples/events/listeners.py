import asyncio

from asyncz.events import TASK_ERROR, TASK_EXECUTED, TASK_STARTED, TASK_SUBMITTED
from asyncz.schedulers import AsyncIOScheduler


def ok():
    return 42


def fails():
    raise RuntimeError("disk full")


def on_event(event):
    # One class per kind of event; the code says which event it is.
    name = {TASK_SUBMITTED: "submitted", TASK_STARTED: "started"}.get(event.code)
    if name:
        print(f"{event.task_id}: {name}")
    elif event.code == TASK_EXECUTED:
        print(f"{event.task_id}: returned {event.return_value!r}")
    elif event.code == TASK_ERROR:
        print(f"{event.task_id}: raised {event.exception!r}")


async def main():
    scheduler = AsyncIOScheduler()
    # The mask says which events this listener receives (codes OR'ed together).
    scheduler.add_listener(on_event, TASK_SUBMITTED | TASK_STARTED | TASK_EXECUTED | TASK_ERROR)
    scheduler.add_task(ok, id="ok")
    scheduler.start()
    await asyncio.sleep(0.2)
    scheduler.add_task(fails, id="fails")
    await asyncio.sleep(0.2)
    scheduler.shutdown()


asyncio.run(main())
