from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest

from asyncz.triggers import BaseTrigger

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


class Jittery(BaseTrigger):
    alias: ClassVar[str] = "jittery"
    jitter = 600.0

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        return None

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        return None


@pytest.mark.parametrize(
    "base",
    [
        datetime(2026, 3, 29, 1, 55, tzinfo=BERLIN),  # up to 10 minutes later is past the gap
        datetime(2026, 10, 25, 2, 55, tzinfo=BERLIN),  # 02:55 CEST, then 02:00 CET again
    ],
)
def test_jitter_is_elapsed_time_across_a_dst_change(base: datetime) -> None:
    trigger = Jittery()
    for _ in range(200):
        jittered = trigger.apply_jitter(base)
        assert jittered is not None
        elapsed = jittered.astimezone(UTC) - base.astimezone(UTC)
        assert timedelta(0) <= elapsed <= timedelta(minutes=10)
        assert jittered.utcoffset() == jittered.tzinfo.utcoffset(jittered)  # a real instant


def test_jitter_never_passes_end_at() -> None:
    base = datetime(2026, 10, 25, 2, 55, tzinfo=BERLIN)  # the first pass of the repeated hour
    end = base.astimezone(UTC) + timedelta(minutes=1)
    trigger = Jittery()
    for _ in range(100):
        jittered = trigger.apply_jitter(base, end)
        assert jittered is not None
        assert base.astimezone(UTC) <= jittered.astimezone(UTC) <= end
