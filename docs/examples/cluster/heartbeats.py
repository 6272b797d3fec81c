import asyncio
import os
import uuid

from asyncz.schedulers import AsyncIOScheduler

REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def send_invoices():
    print("sending invoices")


async def main():
    prefix = f"docs-{uuid.uuid4().hex[:8]}."
    scheduler = AsyncIOScheduler(
        stores={"default": {"type": "redis", "url": REDIS, "key_prefix": prefix}},
        heartbeat_interval=1.0,  # beat every second ...
        heartbeat_dead_after=4.0,  # ... and call a peer dead after 4 s of silence
    )
    scheduler.start()
    # on_crash="rerun": a run cut short by its scheduler's death runs again elsewhere.
    scheduler.add_task(send_invoices, "date", id="send-invoices", on_crash="rerun")
    await asyncio.sleep(0.5)

    # Every run leaves a record in the store, whichever scheduler ran it.
    for run in scheduler.get_task_runs("send-invoices", limit=10):
        print(run.status, run.instance == scheduler.identity, run.duration is not None)
    # This scheduler, then every other one registered in the store.
    for info in scheduler.get_scheduler_instance_infos():
        print(info.scope, info.identity == scheduler.identity)
    scheduler.remove_all_tasks()
    scheduler.shutdown()


asyncio.run(main())
