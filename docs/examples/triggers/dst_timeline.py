"""The DST rule, from the real trigger: fire times of a fixed-time and of a wildcard-hour
schedule across Berlin's spring (2026-03-29) and autumn (2026-10-25) changes.

python dst_timeline.py            prints the fire times
python dst_timeline.py out.png    also draws them (matplotlib), as the docs site shows them
"""

import sys
from datetime import datetime, timedelta, timezone

from asyncz.triggers import CronTrigger

ZONE = "Europe/Berlin"
SCHEDULES = {
    "30 2 * * *  (fixed time)": CronTrigger.from_crontab("30 2 * * *", timezone=ZONE),
    "0 * * * *  (wildcard hour)": CronTrigger.from_crontab("0 * * * *", timezone=ZONE),
}
CHANGES = {  # a window of UTC time around each change
    "spring: 2026-03-29, 02:00 becomes 03:00": datetime(2026, 3, 28, 23, 0, tzinfo=timezone.utc),
    "autumn: 2026-10-25, 03:00 becomes 02:00": datetime(2026, 10, 24, 22, 0, tzinfo=timezone.utc),
}
WINDOW = timedelta(hours=5)
#: hours after the window's start where the wall clock jumps (spring) or repeats (autumn)
MARKS = {
    "spring: 2026-03-29, 02:00 becomes 03:00": (2, 2, "02:00-03:00 never happens"),
    "autumn: 2026-10-25, 03:00 becomes 02:00": (2, 4, "02:00-03:00 happens twice"),
}


def fires(trigger, start):
    """Every fire time in [start, start + WINDOW), asked the way the scheduler asks."""
    out, previous = [], None
    while True:
        moment = trigger.get_next_trigger_time(trigger.timezone, previous, start)
        if moment is None or moment >= start + WINDOW:
            return out
        out.append(moment)
        previous = moment


def main():
    table = {}
    for change, start in CHANGES.items():
        print(change)
        for name, trigger in SCHEDULES.items():
            got = fires(trigger, start)
            table[change, name] = (start, got)
            print(f"  {name}: " + ", ".join(t.strftime("%H:%M%z") for t in got))
    if len(sys.argv) > 1:
        draw(table, sys.argv[1])


def draw(table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(9, 4.6))
    for ax, (change, start) in zip(axes, CHANGES.items(), strict=True):
        hours = [start + timedelta(hours=h) for h in range(6)]
        ax.set_xlim(0, WINDOW.total_seconds() / 3600)
        ax.set_ylim(-0.7, len(SCHEDULES) - 0.3)
        ax.set_xticks(
            range(6),
            [f"{h:%H:%M} UTC\n{h.astimezone(SCHEDULES_ZONE):%H:%M%z}" for h in hours],
            fontsize=7,
        )
        ax.set_yticks(range(len(SCHEDULES)), list(SCHEDULES)[::-1], fontsize=8)
        ax.set_title(change, fontsize=9, loc="left")
        for row, name in enumerate(list(SCHEDULES)[::-1]):
            _, got = table[change, name]
            xs = [(t - start).total_seconds() / 3600 for t in got]
            ax.plot(xs, [row] * len(xs), "o", color="#3f51b5")
            for x, t in zip(xs, got, strict=True):
                ax.annotate(
                    f"{t:%H:%M}\n{t:%z}",
                    (x, row),
                    textcoords="offset points",
                    xytext=(0, 7),
                    ha="center",
                    fontsize=7,
                )
        ax.grid(axis="x", color="#dddddd")
        first, last, label = MARKS[change]
        if last > first:
            ax.axvspan(first, last, color="#ffe0b2")
        else:
            ax.axvline(first, color="#ef6c00")
        ax.text(last + 0.05, -0.55, label, fontsize=7, color="#ef6c00")
    fig.suptitle("Fire times in Europe/Berlin (wall time and UTC offset)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})


SCHEDULES_ZONE = next(iter(SCHEDULES.values())).timezone

if __name__ == "__main__":
    main()
