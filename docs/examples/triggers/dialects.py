"""The two cron dialects side by side: the same schedules, keyword fields and crontab lines."""

from datetime import datetime, timezone

from asyncz.triggers import CronTrigger

START = datetime(2026, 11, 1, tzinfo=timezone.utc)  # a Sunday
PAIRS = {
    "Sundays at noon": (
        CronTrigger(day_of_week="sun", hour=12, timezone="UTC"),  # keyword: 6 = Sunday too
        CronTrigger.from_crontab("0 12 * * 0", timezone="UTC"),  # crontab: 0 and 7 = Sunday
    ),
    "third Friday, 10:30": (
        CronTrigger(day="3rd fri", hour=10, minute=30, timezone="UTC"),
        CronTrigger.from_crontab("30 10 * * fri#3", timezone="UTC"),
    ),
    "last day of the month": (
        CronTrigger(day="last", hour=0, timezone="UTC"),
        CronTrigger.from_crontab("0 0 L * *", timezone="UTC"),
    ),
}


def first(trigger, count=3):
    out, previous = [], None
    for _ in range(count):
        previous = trigger.get_next_trigger_time(trigger.timezone, previous, START)
        out.append(previous.strftime("%a %d %b %H:%M"))
    return out


for meaning, (keywords, crontab) in PAIRS.items():
    assert first(keywords) == first(crontab)
    print(f"{meaning:24} {', '.join(first(keywords))}")

# Where they differ: both day fields restricted. Keywords AND them, crontab ORs them.
both = CronTrigger.from_crontab("0 0 13 * fri", timezone="UTC")
print("crontab '0 0 13 * fri'  ", ", ".join(first(both, 4)))
