"""The ``aligned`` trigger: every N minutes, on the clock's N-minute marks (:00, :15, ...).

scheduler.add_task(poll, "aligned", minutes=15)
"""

from datetime import datetime, timedelta, timezone

import asyncz
from asyncz.triggers import BaseTrigger
from asyncz.utils import to_timezone

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AlignedTrigger(BaseTrigger):
    """Fires every ``minutes`` minutes of elapsed time, on multiples of ``minutes`` since the
    Unix epoch, so a DST change neither skips nor repeats a mark."""

    alias = "aligned"  # the alias it is registered under
    __slots__ = ("minutes", "timezone")

    def __init__(self, minutes=15, timezone=None):
        if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 1440:
            raise ValueError(f"minutes must be a whole number from 1 to 1440, got {minutes!r}")
        self.minutes = minutes
        self.timezone = to_timezone(timezone)  # None: the local zone

    def get_next_trigger_time(self, timezone, previous_time, now=None):
        """The first mark after ``previous_time`` (or at/after ``now`` for the first run)."""
        step = timedelta(minutes=self.minutes)
        # In UTC: adding to a wall time would lose which pass of a repeated hour it was.
        if previous_time is not None:
            after = previous_time.astimezone(UTC) + timedelta(microseconds=1)
        else:
            after = now.astimezone(UTC)
        marks = -((EPOCH - after) // step)  # ceil((after - EPOCH) / step)
        return (EPOCH + marks * step).astimezone(self.timezone)

    def __getstate__(self):
        # Plain data with a version: stores keep it as JSON or pickle. A zone by its name;
        # a local zone without one (None) is the local zone again when restored.
        zone = getattr(self.timezone, "key", None)
        return {"version": 1, "minutes": self.minutes, "timezone": zone}

    def __setstate__(self, state):
        self.check_state_version(state, 1)
        self.__init__(state["minutes"], state["timezone"])

    def __repr__(self):
        return f"<AlignedTrigger (every {self.minutes} min)>"

    def __str__(self):
        return f"aligned[{self.minutes} min]"


@asyncz.hookimpl
def asyncz_register_triggers(register):
    register("aligned", AlignedTrigger)
