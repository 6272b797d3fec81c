from datetime import datetime, timezone

from asyncz.schedulers import AsyncIOScheduler


def poll():
    pass


scheduler = AsyncIOScheduler(timezone="Europe/Berlin")
task = scheduler.add_task(poll, "aligned", minutes=15, id="poll")  # the alias, once installed
print(task.trigger)
start = datetime(2026, 10, 25, 0, 40, tzinfo=timezone.utc)  # the autumn change in Berlin
previous = None
for _ in range(4):
    previous = task.trigger.get_next_trigger_time(scheduler.timezone, previous, start)
    print(previous.isoformat())
