"""Asyncz's trigger API as asyncz provides it: public paths, field/expression objects, the
``BaseTrigger`` helpers, reprs, and where the zone of a cron trigger comes from."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any, ClassVar
from unittest.mock import Mock
from zoneinfo import ZoneInfo

import pytest

from asyncz.triggers import BaseTrigger, CronTrigger, DateTrigger, IntervalTrigger, OrTrigger
from asyncz.triggers.cron.expressions import (
    AllExpression,
    LastDayOfMonthExpression,
    MonthRangeExpression,
    RangeExpression,
    WeekdayPositionExpression,
    WeekdayRangeExpression,
)
from asyncz.triggers.cron.fields import (
    BaseField,
    DayOfMonthField,
    DayOfWeekField,
    MonthField,
    WeekField,
)

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
LONDON = ZoneInfo("Europe/London")


# -- public paths ------------------------------------------------------------------------------


def test_public_paths_name_the_plugin_objects() -> None:
    import asyncz.plugins.triggers.combining as combining
    import asyncz.plugins.triggers.cron.trigger as cron
    import asyncz.triggers.combination
    import asyncz.triggers.cron.trigger
    import asyncz.triggers.date
    import asyncz.triggers.interval

    assert asyncz.triggers.cron.trigger.CronTrigger is cron.CronTrigger
    assert asyncz.triggers.combination.AndTrigger is combining.AndTrigger
    assert asyncz.triggers.combination.OrTrigger is combining.OrTrigger
    assert asyncz.triggers.date.DateTrigger is DateTrigger
    assert asyncz.triggers.interval.IntervalTrigger is IntervalTrigger


def test_patching_the_public_modules_clock_reaches_the_triggers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen = datetime(2022, 11, 3, 18, 40, tzinfo=UTC)

    def now(tz: tzinfo | None = None) -> datetime:
        return frozen.astimezone(tz) if tz else frozen.replace(tzinfo=None)

    fake = Mock(datetime, now=now)
    monkeypatch.setattr("asyncz.triggers.date.datetime", fake)
    monkeypatch.setattr("asyncz.triggers.interval.datetime", fake)
    assert DateTrigger(timezone="UTC").run_at == frozen
    assert IntervalTrigger(seconds=30, timezone="UTC").start_at == frozen + timedelta(seconds=30)


# -- field and expression objects --------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "when", "expected"),
    [
        (BaseField("hour", "*/3"), datetime(2009, 7, 1, 7), 9),
        (BaseField("hour", "*/3"), datetime(2009, 7, 1, 22), None),
        (BaseField("minute", "5,10-12"), datetime(2009, 7, 1, 7, 11), 11),
        (DayOfMonthField("day", "31"), datetime(2009, 2, 1), None),  # no 31 in February
        (DayOfMonthField("day", "last"), datetime(2012, 2, 1), 29),
        (DayOfMonthField("day", "2nd wed,last fri"), datetime(2008, 2, 14), 29),
        (DayOfWeekField("day_of_week", "sat,sun"), datetime(2008, 2, 4), 5),  # from a Monday
        (MonthField("month", "mar-may"), datetime(2008, 4, 30), 4),
        (WeekField("week", "10-12"), date(2020, 1, 1), 10),
        (WeekField("week", "53"), date(2021, 1, 10), None),  # 2021 has 52 ISO weeks
    ],
    ids=repr,
)
def test_field_next_values(field: BaseField, when: date, expected: int | None) -> None:
    assert field.get_next_value(when) == expected


def test_field_texts_and_expressions() -> None:
    field = DayOfMonthField("day", " LAST , 1st Fri ,3-9/2")
    assert repr(field) == "DayOfMonthField('day', 'last,1st fri,3-9/2')"
    assert field.expressions == [
        LastDayOfMonthExpression(),
        WeekdayPositionExpression("1st", "fri"),
        RangeExpression(3, 9, 2),
    ]
    assert str(MonthField("month", "jan-mar,12")) == "jan-mar,12"
    assert MonthField("month", "jan-mar").expressions == [MonthRangeExpression("jan", "mar")]
    assert DayOfWeekField("day_of_week", "Tue-SAT").expressions == [
        WeekdayRangeExpression("tue", "sat")
    ]
    # names mixed with numbers or steps read as numbers
    assert DayOfWeekField("day_of_week", "mon-fri/2").expressions == [RangeExpression(0, 4, 2)]
    assert repr(RangeExpression(2, None, 3)) == "RangeExpression(2, None, 3)"
    assert str(AllExpression(5)) == "*/5"
    assert repr(MonthRangeExpression("feb")) == "MonthRangeExpression('feb')"
    assert BaseField("hour", 5).real and not DayOfWeekField("day_of_week", "*").real


def test_fields_read_dates() -> None:
    when = datetime(2020, 2, 12, 13, 14, 15)
    assert DayOfMonthField("day", "*").get_max(when) == 29
    assert WeekField("week", "*").get_value(when) == 7
    assert DayOfWeekField("day_of_week", "*").get_value(when) == 2
    assert BaseField("year", "*").get_min(when) == 1970
    assert BaseField("second", "*").get_value(when) == 15


@pytest.mark.parametrize(
    ("name", "text"),
    [("hour", "24"), ("day", "*/31"), ("day", "4-6/3"), ("month", "jam"), ("day", "6th fri")],
)
def test_fields_refuse_what_the_trigger_refuses_with_the_same_words(name: str, text: str) -> None:
    with pytest.raises(ValueError) as from_trigger:
        CronTrigger(**{name: text}, timezone="UTC")
    field_class = {"day": DayOfMonthField, "month": MonthField}.get(name, BaseField)
    with pytest.raises(ValueError) as from_field:
        field_class(name, text)
    assert str(from_field.value) == str(from_trigger.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: AllExpression(0),
        lambda: RangeExpression(7, 3),
        lambda: WeekdayRangeExpression("mon", "fre"),
        lambda: WeekdayPositionExpression("0th", "mon"),
        lambda: MonthRangeExpression("jam"),
        lambda: BaseField("hours", "1"),
    ],
)
def test_bad_expressions_are_value_errors(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


def test_expressions_answer_for_a_field_or_its_name() -> None:
    expression = RangeExpression(3, 7)
    when = datetime(2020, 1, 1, 5)
    assert expression.get_next_value(when, "hour") == 5
    assert expression.get_next_value(when, BaseField("hour", "*")) == 5
    assert WeekdayPositionExpression("last", "mon").get_next_value(date(2024, 1, 1)) == 29


# -- BaseTrigger -------------------------------------------------------------------------------


class Fixed(BaseTrigger):
    alias: ClassVar[str] = "fixed"

    def __init__(self, moment: datetime | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.moment = moment

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        return self.apply_jitter(self.moment, self.jitter, now)


def test_base_trigger_keeps_keyword_attributes_and_jitters_the_asyncz_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moment = datetime(2026, 3, 29, 1, 59, 50, tzinfo=BERLIN)  # 10 s before the gap
    trigger = Fixed(moment, jitter=30, label="x")
    assert trigger.jitter == 30 and trigger.label == "x"  # type: ignore[attr-defined]
    monkeypatch.setattr(random, "uniform", lambda a, b: 20.0)
    got = trigger.get_next_trigger_time(BERLIN, None, moment)
    assert got is not None
    assert got.astimezone(UTC) - moment.astimezone(UTC) == timedelta(seconds=20)  # elapsed
    assert got.replace(tzinfo=None) == datetime(2026, 3, 29, 3, 0, 10)
    assert Fixed(None, jitter=5).get_next_trigger_time(UTC, None, moment) is None
    assert Fixed(moment).get_next_trigger_time(UTC, None, moment) == moment
    assert trigger.apply_jitter(moment, None, moment) == moment


# -- cron trigger ------------------------------------------------------------------------------


def test_cron_zone_comes_from_an_aware_start_at_then_end_at() -> None:
    start = datetime(2022, 4, 13, 5, 30, tzinfo=BERLIN)
    end = datetime(2023, 1, 1, tzinfo=LONDON)
    assert CronTrigger(hour=4, start_at=start).timezone == BERLIN
    assert CronTrigger(hour=4, end_at=end).timezone == LONDON
    assert CronTrigger(hour=4, start_at=start, end_at=end).timezone == BERLIN
    assert CronTrigger(hour=4, start_at=start, timezone="UTC").timezone == ZoneInfo("UTC")
    trigger = CronTrigger(hour=4, end_at=end)
    got = trigger.get_next_trigger_time(UTC, None, datetime(2022, 6, 1, tzinfo=UTC))
    assert got == datetime(2022, 6, 1, 4, tzinfo=LONDON)


def test_cron_with_listed_years_and_no_matching_date_is_finished() -> None:
    trigger = CronTrigger(year=2009, month=1, day="6-10", day_of_week="0,6", timezone="UTC")
    assert trigger.get_next_trigger_time(UTC, None, datetime(2009, 1, 1, tzinfo=UTC)) is None
    with pytest.raises(ValueError, match="never match"):
        CronTrigger(month=2, day="30-31", timezone="UTC")


def test_keyword_steps_may_not_exceed_their_range_crontab_steps_may() -> None:
    with pytest.raises(ValueError, match=r"step value \(3\).*range of the expression \(2\)"):
        CronTrigger(day="4-6/3", timezone="UTC")
    assert CronTrigger.from_crontab("*/60 * * * *", "UTC") is not None


def test_reprs_show_moments_as_asyncz_does() -> None:
    cron = CronTrigger(
        hour=2, start_at="2022-01-01", end_at="2023-1-1", jitter=4, timezone="Europe/Paris"
    )
    assert repr(cron) == (
        "<CronTrigger (hour='2', start_at='2022-01-01 00:00:00 CET', "
        "end_at='2023-01-01 00:00:00 CET', jitter='4', timezone='Europe/Paris')>"
    )
    interval = IntervalTrigger(
        hours=2, start_at="2022-07-01 10:00", jitter=4.5, timezone="Europe/Paris"
    )
    assert repr(interval) == (
        "<IntervalTrigger (interval=datetime.timedelta(seconds=7200), "
        "start_at='2022-07-01 10:00:00 CEST', jitter=4.5, timezone='Europe/Paris')>"
    )
    assert repr(DateTrigger("2022-11-3", "Europe/London")) == (
        "<DateTrigger (run_at='2022-11-03 00:00:00 GMT')>"
    )
    either = OrTrigger([CronTrigger(hour=1, timezone="UTC")], jitter=3.0)
    assert repr(either) == "<OrTrigger([<CronTrigger (hour='1', timezone='UTC')>], jitter=3)>"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-8-1 5:16:12", datetime(2022, 8, 1, 5, 16, 12, tzinfo=BERLIN)),
        ("2022-8-1T5:16:12Z", datetime(2022, 8, 1, 5, 16, 12, tzinfo=UTC)),
        ("2022-8-1 5:16:12+02:30", datetime(2022, 8, 1, 2, 46, 12, tzinfo=UTC)),
        ("2022-08-01", datetime(2022, 8, 1, tzinfo=BERLIN)),
    ],
)
def test_date_strings_without_zero_padding(text: str, expected: datetime) -> None:
    assert DateTrigger(text, timezone=BERLIN).run_at == expected


def test_base_trigger_refuses_positional_arguments_it_has_no_parameters_for() -> None:
    class Bare(BaseTrigger):
        alias: ClassVar[str] = "bare"

        def get_next_trigger_time(
            self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
        ) -> datetime | None:
            return None

    with pytest.raises(TypeError, match=r"Bare\(\) got positional arguments \(Ellipsis,\)"):
        Bare(...)
