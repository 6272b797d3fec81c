"""CronTrigger: both dialects, the DST rule's pinned examples, validation, state."""

from __future__ import annotations

import pickle
import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from asyncz.plugins.triggers.cron import CronTrigger
from asyncz.triggers import CronTrigger as PublicCronTrigger

from .helpers import UTC, assert_strictly_increasing, fires, iso

BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
KOLKATA = ZoneInfo("Asia/Kolkata")


def test_public_import_path() -> None:
    assert PublicCronTrigger is CronTrigger


# -- the DST rule: issue 4, point 7 ------------------------------------------------------------


def test_fixed_time_in_skipped_hour_runs_once_at_end_of_gap() -> None:
    trigger = CronTrigger.from_crontab("30 2 * * *", timezone="Europe/Berlin")
    got = fires(trigger, datetime(2026, 3, 28, 12, tzinfo=BERLIN), 3)
    assert iso(got) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_fixed_time_in_repeated_hour_runs_once() -> None:
    trigger = CronTrigger.from_crontab("30 2 * * *", timezone="Europe/Berlin")
    got = fires(trigger, datetime(2026, 10, 24, 12, tzinfo=BERLIN), 3)
    assert iso(got) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
        "2026-10-27T02:30:00+01:00",
    ]


def test_wildcard_hour_follows_real_time_in_repeated_hour() -> None:
    trigger = CronTrigger.from_crontab("0 * * * *", timezone="Europe/Berlin")
    got = fires(trigger, datetime(2026, 10, 25, 0, 30, tzinfo=BERLIN), 5)
    assert iso(got) == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T04:00:00+01:00",
    ]
    assert_strictly_increasing(got)


def test_wildcard_hour_skips_nonexistent_hour() -> None:
    trigger = CronTrigger.from_crontab("0 * * * *", timezone="Europe/Berlin")
    got = fires(trigger, datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN), 3)
    assert iso(got) == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]


def test_keyword_fields_follow_the_same_rule() -> None:
    fixed = CronTrigger(hour=2, minute=30, timezone=BERLIN)
    assert iso(fires(fixed, datetime(2026, 3, 29, tzinfo=BERLIN), 1)) == [
        "2026-03-29T03:00:00+02:00"
    ]
    hourly = CronTrigger(minute=0, timezone=BERLIN)  # hour is '*' by the unset-field rule
    got = fires(hourly, datetime(2026, 10, 25, 1, 30, tzinfo=BERLIN), 3)
    assert iso(got) == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_several_skipped_times_collapse_into_one_run() -> None:
    trigger = CronTrigger.from_crontab("0,15,30,45 2,3 * * *", timezone="Europe/Berlin")
    got = fires(trigger, datetime(2026, 3, 29, tzinfo=BERLIN), 4)
    assert iso(got) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:15:00+02:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-29T03:45:00+02:00",
    ]


def test_fixed_range_of_hours_across_fall_back() -> None:
    trigger = CronTrigger.from_crontab("0 1-3 * * *", timezone="Europe/Berlin")
    got = fires(trigger, datetime(2026, 10, 25, tzinfo=BERLIN), 3)
    assert iso(got) == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_starting_inside_the_second_pass() -> None:
    second_pass = datetime(2026, 10, 25, 2, 10, tzinfo=BERLIN, fold=1)
    wildcard = CronTrigger.from_crontab("*/30 * * * *", timezone="Europe/Berlin")
    assert iso(fires(wildcard, second_pass, 2)) == [
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    fixed = CronTrigger.from_crontab("30 2 * * *", timezone="Europe/Berlin")
    assert iso(fires(fixed, second_pass, 1)) == ["2026-10-26T02:30:00+01:00"]


def test_lord_howe_half_hour_dst() -> None:
    # Spring: 02:00 +10:30 -> 02:30 +11:00; autumn: 02:00 +11:00 -> 01:30 +10:30.
    fixed = CronTrigger.from_crontab("15 2 * * *", timezone="Australia/Lord_Howe")
    assert iso(fires(fixed, datetime(2026, 10, 4, tzinfo=LORD_HOWE), 2)) == [
        "2026-10-04T02:30:00+11:00",
        "2026-10-05T02:15:00+11:00",
    ]
    wildcard = CronTrigger.from_crontab("*/20 * * * *", timezone="Australia/Lord_Howe")
    got = fires(wildcard, datetime(2026, 4, 5, 1, 0, tzinfo=LORD_HOWE), 6)
    assert iso(got) == [
        "2026-04-05T01:00:00+11:00",
        "2026-04-05T01:20:00+11:00",
        "2026-04-05T01:40:00+11:00",
        "2026-04-05T01:40:00+10:30",
        "2026-04-05T02:00:00+10:30",
        "2026-04-05T02:20:00+10:30",
    ]
    once = CronTrigger.from_crontab("45 1 * * *", timezone="Australia/Lord_Howe")
    assert iso(fires(once, datetime(2026, 4, 5, tzinfo=LORD_HOWE), 2)) == [
        "2026-04-05T01:45:00+11:00",
        "2026-04-06T01:45:00+10:30",
    ]


def test_kolkata_half_hour_offset() -> None:
    trigger = CronTrigger.from_crontab("0 9 * * *", timezone="Asia/Kolkata")
    got = fires(trigger, datetime(2026, 1, 1, tzinfo=UTC), 2)
    assert iso(got) == ["2026-01-01T09:00:00+05:30", "2026-01-02T09:00:00+05:30"]
    assert got[0].astimezone(UTC).isoformat() == "2026-01-01T03:30:00+00:00"


def test_midnight_skipped_by_dst() -> None:
    # America/Havana springs forward at 00:00 -> 01:00: midnight does not exist that day.
    havana = ZoneInfo("America/Havana")
    trigger = CronTrigger.from_crontab("@daily", timezone="America/Havana")
    got = fires(trigger, datetime(2026, 3, 7, 12, tzinfo=havana), 2)
    assert iso(got) == ["2026-03-08T01:00:00-04:00", "2026-03-09T00:00:00-04:00"]


def test_results_are_in_the_trigger_zone_whatever_the_input_zone() -> None:
    trigger = CronTrigger.from_crontab("0 12 * * *", timezone="Europe/Berlin")
    got = trigger.get_next_trigger_time(UTC, None, datetime(2026, 7, 1, 12, tzinfo=UTC))
    assert got is not None and got.tzinfo is BERLIN
    assert got.isoformat() == "2026-07-02T12:00:00+02:00"


# -- dates: leap days, last days ---------------------------------------------------------------


def test_leap_days() -> None:
    trigger = CronTrigger.from_crontab("0 0 29 2 *", timezone="UTC")
    assert iso(fires(trigger, datetime(2025, 1, 1, tzinfo=UTC), 3)) == [
        "2028-02-29T00:00:00+00:00",
        "2032-02-29T00:00:00+00:00",
        "2036-02-29T00:00:00+00:00",
    ]
    # 2100 is not a leap year
    assert fires(trigger, datetime(2097, 1, 1, tzinfo=UTC), 1)[0].year == 2104


def test_last_day_of_month_both_dialects() -> None:
    keyword = CronTrigger(day="last", hour=0, minute=0, timezone="UTC")
    crontab = CronTrigger.from_crontab("0 0 L * *", timezone="UTC")
    expected = ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2025-02-28"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for trigger in (keyword, crontab):
        got = [d.date().isoformat() for d in fires(trigger, start, 14)]
        assert got[:4] == expected[:4]
        assert expected[4] in got


def test_quartz_day_extensions() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def days(expr: str, n: int = 4) -> list[str]:
        return [
            d.strftime("%a %m-%d") for d in fires(CronTrigger.from_crontab(expr, "UTC"), start, n)
        ]

    assert days("0 0 L-2 * *", 2) == ["Thu 01-29", "Thu 02-26"]
    # 15W: the weekday nearest the 15th (Feb 15 2026 is a Sunday -> Monday 16th)
    assert days("0 0 15W * *", 3) == ["Thu 01-15", "Mon 02-16", "Mon 03-16"]
    # 1W never leaves the month: Aug 1 2026 is a Saturday -> Monday 3rd
    assert days("0 0 1W 8 *", 1) == ["Mon 08-03"]
    # LW: last weekday (Jan 31 2026 is a Saturday -> Friday 30th; May 31 a Sunday -> 29th)
    assert days("0 0 LW * *", 5) == [
        "Fri 01-30",
        "Fri 02-27",
        "Tue 03-31",
        "Thu 04-30",
        "Fri 05-29",
    ]
    assert days("0 0 * * fri#3", 2) == ["Fri 01-16", "Fri 02-20"]
    assert days("0 0 * * 5#3", 2) == ["Fri 01-16", "Fri 02-20"]
    assert days("0 0 * * 5L", 2) == ["Fri 01-30", "Fri 02-27"]
    assert days("0 0 * * friL", 2) == ["Fri 01-30", "Fri 02-27"]
    assert days("0 0 * * L5", 2) == ["Fri 01-30", "Fri 02-27"]


def test_keyword_day_specials() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    third = CronTrigger(day="3rd fri", timezone="UTC")
    assert [d.date().isoformat() for d in fires(third, start, 2)] == ["2026-01-16", "2026-02-20"]
    last = CronTrigger(day="last sun", timezone="UTC")
    assert [d.date().isoformat() for d in fires(last, start, 2)] == ["2026-01-25", "2026-02-22"]
    fifth = CronTrigger(day="5th mon", timezone="UTC")  # months with five Mondays only
    assert [d.date().isoformat() for d in fires(fifth, start, 2)] == ["2026-03-30", "2026-06-29"]


# -- the two dialects --------------------------------------------------------------------------


def test_crontab_sunday_is_0_and_7_keyword_monday_is_0() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday
    for expr in ("0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "@weekly"):
        got = fires(CronTrigger.from_crontab(expr, "UTC"), start, 1)
        assert got[0].strftime("%a") == "Sun", expr
    keyword = CronTrigger(day_of_week=0, timezone="UTC")
    assert fires(keyword, start, 1)[0].strftime("%a") == "Mon"
    assert fires(CronTrigger(day_of_week=6, timezone="UTC"), start, 1)[0].strftime("%a") == "Sun"


def test_crontab_day_fields_or_keyword_and() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ored = CronTrigger.from_crontab("0 0 13 * fri", "UTC")
    got = [d.strftime("%a %d") for d in fires(ored, start, 4)]
    assert got == ["Fri 02", "Fri 09", "Tue 13", "Fri 16"]
    anded = CronTrigger(day=13, day_of_week="fri", timezone="UTC")
    assert fires(anded, start, 1)[0].date().isoformat() == "2026-02-13"
    # a day field starting with '*' is unrestricted, so the fields AND (ISC cron)
    stepped = CronTrigger.from_crontab("0 0 */2 * mon", "UTC")
    got = [d.strftime("%a %d") for d in fires(stepped, start, 3)]
    assert got == ["Mon 05", "Mon 19", "Mon 09"]


def test_macros() -> None:
    start = datetime(2026, 5, 17, 10, 30, tzinfo=UTC)
    expect = {
        "@yearly": "2027-01-01T00:00:00+00:00",
        "@annually": "2027-01-01T00:00:00+00:00",
        "@monthly": "2026-06-01T00:00:00+00:00",
        "@weekly": "2026-05-24T00:00:00+00:00",
        "@daily": "2026-05-18T00:00:00+00:00",
        "@midnight": "2026-05-18T00:00:00+00:00",
        "@hourly": "2026-05-17T11:00:00+00:00",
    }
    for macro, first in expect.items():
        assert iso(fires(CronTrigger.from_crontab(macro, "UTC"), start, 1)) == [first]


def test_seconds_field() -> None:
    trigger = CronTrigger.from_crontab("*/20 0 12 * * *", "UTC")
    got = fires(trigger, datetime(2026, 1, 1, 11, 59, 59, tzinfo=UTC), 4)
    assert [d.strftime("%H:%M:%S") for d in got] == ["12:00:00", "12:00:20", "12:00:40", "12:00:00"]


def test_unset_field_rule() -> None:
    assert CronTrigger(hour=9).fields == {
        "year": "*",
        "month": "*",
        "day": "*",
        "week": "*",
        "day_of_week": "*",
        "hour": "9",
        "minute": "0",
        "second": "0",
    }
    assert CronTrigger(month=6, minute=5).fields == {
        "year": "*",
        "month": "6",
        "day": "*",
        "week": "*",
        "day_of_week": "*",
        "hour": "*",
        "minute": "5",
        "second": "0",
    }
    assert CronTrigger(year=2030).fields["month"] == "1"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert fires(CronTrigger(year=2030, timezone="UTC"), start, 2) == [
        datetime(2030, 1, 1, tzinfo=UTC)
    ]


def test_expression_grammar_keyword() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    trigger = CronTrigger(
        month="jan-mar/2", day="1,15", hour="8-10/2", minute="*/30", timezone="UTC"
    )
    got = [d.strftime("%m-%d %H:%M") for d in fires(trigger, start, 5)]
    assert got == ["01-01 08:00", "01-01 08:30", "01-01 10:00", "01-01 10:30", "01-15 08:00"]
    week = CronTrigger(week=10, day_of_week="wed", timezone="UTC")
    assert fires(week, start, 1)[0].date().isoformat() == "2026-03-04"
    step_from = CronTrigger(minute="10/20", timezone="UTC")
    assert [d.minute for d in fires(step_from, start, 4)] == [10, 30, 50, 10]


def test_start_at_and_end_at() -> None:
    trigger = CronTrigger(
        hour=12, timezone="UTC", start_at="2026-06-01", end_at="2026-06-03 12:00:00"
    )
    got = fires(trigger, datetime(2026, 1, 1, tzinfo=UTC), 10)
    assert iso(got) == [
        "2026-06-01T12:00:00+00:00",
        "2026-06-02T12:00:00+00:00",
        "2026-06-03T12:00:00+00:00",
    ]


def test_now_is_inclusive_previous_is_exclusive() -> None:
    trigger = CronTrigger.from_crontab("*/5 * * * *", "UTC")
    at = datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    assert trigger.get_next_trigger_time(UTC, None, at) == at
    assert trigger.get_next_trigger_time(UTC, at, at) == at + timedelta(minutes=5)
    just_after = at + timedelta(microseconds=1)
    assert trigger.get_next_trigger_time(UTC, None, just_after) == at + timedelta(minutes=5)


def test_exhaustion() -> None:
    trigger = CronTrigger(year=2026, month=12, day=31, hour=23, timezone="UTC")
    last = datetime(2026, 12, 31, 23, tzinfo=UTC)
    assert trigger.get_next_trigger_time(UTC, None, datetime(2026, 1, 1, tzinfo=UTC)) == last
    assert trigger.get_next_trigger_time(UTC, last, last) is None
    assert (
        CronTrigger(year=9999, timezone="UTC").get_next_trigger_time(
            UTC, datetime(9999, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)
        )
        is None
    )


def test_jitter_stays_within_bounds_and_end_at() -> None:
    trigger = CronTrigger(minute="*/10", timezone=BERLIN, jitter=30)
    base = datetime(2026, 3, 29, 1, 50, tzinfo=BERLIN)
    for _ in range(50):
        got = trigger.get_next_trigger_time(UTC, None, base)
        assert got is not None
        delta = got.astimezone(UTC) - base.astimezone(UTC)
        assert timedelta(0) <= delta <= timedelta(seconds=30)
    capped = CronTrigger(
        minute="*/10", timezone="UTC", jitter=300, end_at="2026-01-01 00:00:10+00:00"
    )
    got = capped.get_next_trigger_time(UTC, None, datetime(2026, 1, 1, tzinfo=UTC))
    assert got is not None and got <= datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"hours": 1}, ["hours", "hour"]),
        ({"minutes": 5}, ["minutes", "minute"]),
        ({"start_date": "2026-01-01"}, ["start_date"]),
    ],
)
def test_unknown_keywords_are_type_errors(kwargs: dict, words: list[str]) -> None:
    with pytest.raises(TypeError) as info:
        CronTrigger(**kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"hour": 24}, ["hour", "24", "0-23"]),
        ({"minute": "61"}, ["minute", "61", "0-59"]),
        ({"second": "*/0"}, ["second", "*/0", "1-59"]),
        ({"day": "*/31"}, ["day", "*/31", "step value (31)", "range of the expression (30)"]),
        ({"hour": "0-24"}, ["hour", "last value (24)", "maximum value (23)"]),
        ({"day": 32}, ["day", "32", "1-31"]),
        ({"day": "6th fri"}, ["day", "6th fri"]),
        ({"day": "3rd fry"}, ["day", "fry"]),
        ({"month": 13}, ["month", "13", "1-12"]),
        ({"month": "jam"}, ["month", "jam", "jan-dec"]),
        ({"day_of_week": 7}, ["day_of_week", "7", "0-6", "Monday"]),
        ({"day_of_week": "fri#3"}, ["day_of_week", "fri#3", "3rd fri"]),
        ({"day_of_week": "fri-mon"}, ["day_of_week", "backwards"]),
        ({"week": 54}, ["week", "54", "1-53"]),
        ({"year": 1969}, ["year", "1969", "1970-9999"]),
        ({"hour": "1,,2"}, ["hour", "empty"]),
        ({"hour": "*-3"}, ["hour", "*-3"]),
        ({"hour": ""}, ["hour"]),
        ({"month": 2, "day": 30}, ["never match"]),
    ],
)
def test_bad_keyword_values_are_value_errors(kwargs: dict, words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        CronTrigger(**kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("* * * *", ["4 fields"]),
        ("* * * * * * *", ["7 fields"]),
        ("60 * * * *", ["minute", "60", "0-59"]),
        ("* 24 * * *", ["hour", "24"]),
        ("* * 0 * *", ["day of month", "0", "1-31"]),
        ("* * * 13 *", ["month", "13"]),
        ("* * * * 8", ["day of week", "8", "0-7"]),
        ("* * * * L", ["day of week", "ambiguous"]),
        ("* * * * 5#6", ["day of week", "5#6", "1-5"]),
        ("* * 32W * *", ["day of month", "32"]),
        ("@reboot", ["@reboot", "shutdown"]),
        ("@every5m", ["macro", "@daily"]),
        ("0 0 30 2 *", ["never matches"]),
        ("*/0 * * * *", ["minute", "step"]),
        ("a b c d e", ["minute", "'a'"]),
    ],
)
def test_bad_crontab_expressions(expr: str, words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        CronTrigger.from_crontab(expr, "UTC")
    for word in words:
        assert word in str(info.value)


def test_type_errors() -> None:
    with pytest.raises(TypeError, match="hour"):
        CronTrigger(hour=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="hour"):
        CronTrigger(hour=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CronTrigger.from_crontab(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Mars/Olympus"):
        CronTrigger(hour=1, timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="jitter"):
        CronTrigger(hour=1, jitter=-1)
    with pytest.raises(ValueError, match="end_at"):
        CronTrigger(hour=1, start_at="2026-02-01", end_at="2026-01-01", timezone="UTC")


# -- state, repr -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "trigger",
    [
        CronTrigger(day_of_week="mon-fri", hour="9-17", timezone="Europe/Berlin"),
        CronTrigger(
            day="last",
            hour=0,
            minute=0,
            timezone="UTC",
            jitter=5,
            start_at="2026-01-01 00:00:00+00:00",
            end_at="2027-01-01 00:00:00+00:00",
        ),
        CronTrigger.from_crontab("0 9 * * 1-5", timezone="Asia/Kolkata"),
        CronTrigger.from_crontab("@hourly", timezone="+05:30"),
        CronTrigger(timezone="UTC"),
    ],
    ids=repr,
)
def test_state_round_trips(trigger: CronTrigger) -> None:
    state = trigger.__getstate__()
    assert state["version"] == 1
    rebuilt = CronTrigger.__new__(CronTrigger)
    rebuilt.__setstate__(state)
    assert rebuilt == trigger and repr(rebuilt) == repr(trigger)
    unpickled = pickle.loads(pickle.dumps(trigger))
    assert unpickled == trigger and str(unpickled) == str(trigger)
    start = datetime(2026, 3, 20, tzinfo=UTC)
    random.seed(4)  # the same jitter for both
    expected = iso(fires(trigger, start, 20))
    random.seed(4)
    assert iso(fires(unpickled, start, 20)) == expected


def test_state_is_plain_data() -> None:
    state = CronTrigger(hour=9, timezone="Europe/Berlin").__getstate__()
    assert state == {
        "version": 1,
        "crontab": None,
        "fields": {"hour": "9"},
        "start_at": None,
        "end_at": None,
        "timezone": "Europe/Berlin",
        "jitter": None,
    }
    with pytest.raises(ValueError, match="version"):
        CronTrigger.__new__(CronTrigger).__setstate__({**state, "version": 99})


def test_repr_and_str() -> None:
    trigger = CronTrigger(year="2022/2", month="1/3", day="5-13", timezone="UTC")
    assert str(trigger) == "cron[year='2022/2', month='1/3', day='5-13']"
    assert repr(trigger) == (
        "<CronTrigger (year='2022/2', month='1/3', day='5-13', timezone='UTC')>"
    )
    july = CronTrigger(month="jul", timezone="Europe/London")
    assert repr(july) == "<CronTrigger (month='jul', timezone='Europe/London')>"
    crontab = CronTrigger.from_crontab("  0  9 * * MON-FRI ", timezone="Europe/Berlin")
    assert str(crontab) == "cron['0 9 * * mon-fri']"
    assert repr(crontab) == (
        "<CronTrigger.from_crontab('0 9 * * mon-fri', timezone='Europe/Berlin')>"
    )


def test_registered_under_cron_alias() -> None:
    from asyncz.core.plugins import default_registry

    assert default_registry().resolve("trigger", "cron") is CronTrigger
