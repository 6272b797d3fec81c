"""Property tests of CronTrigger against independent oracles.

* croniter (a test-only dependency) for crontab lines in zones without DST, mapping the known
  dialect differences: croniter ORs the day fields unless told ``day_or=False``, while ISC cron
  ANDs them whenever one starts with ``*``; croniter spells "last Friday" ``L5`` where Quartz
  writes ``5L``; croniter mishandles specials combined with a restricted other day field, so
  specials are generated only next to ``*``.
* a minute-by-minute brute force (``helpers.brute_force``) for DST transitions in several zones
  over several years; it knows nothing of the trigger's algorithm, only the DST rule.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from asyncz.plugins.triggers.cron import CronTrigger

from .helpers import UTC, assert_strictly_increasing, brute_force, fires, iso

croniter_module = pytest.importorskip("croniter")
croniter = croniter_module.croniter

SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


@st.composite
def numeric_item(draw: st.DrawFn, lo: int, hi: int, names: tuple[str, ...] = ()) -> str:
    def value(v: int) -> str:
        if names and draw(st.booleans()):
            return names[v - lo] if v - lo < len(names) else str(v)
        return str(v)

    kind = draw(st.sampled_from(["value", "range", "range_step", "star_step", "start_step"]))
    a = draw(st.integers(lo, hi))
    if kind == "value":
        return value(a)
    if kind == "star_step":
        return f"*/{draw(st.integers(1, hi - lo + 1))}"
    step = draw(st.integers(1, max(1, (hi - lo) // 2)))
    if kind == "start_step":
        return f"{a}/{step}"
    if a == hi:
        return value(a)
    b = draw(st.integers(a + 1, hi))  # croniter reads a degenerate 'a-a' as '*'
    if kind == "range":
        return f"{value(a)}-{value(b)}"
    return f"{a}-{b}/{step}"


def field(lo: int, hi: int, names: tuple[str, ...] = (), star_weight: int = 3) -> st.SearchStrategy:
    items = st.lists(numeric_item(lo, hi, names), min_size=1, max_size=3).map(",".join)
    return st.one_of(*([st.just("*")] * star_weight), items)


@st.composite
def crontab_lines(draw: st.DrawFn) -> tuple[str, str, bool]:
    """A crontab line in our dialect, the same schedule for croniter, and croniter's day_or."""
    minute = draw(field(0, 59, star_weight=1))
    hour = draw(field(0, 23, star_weight=2))
    month = draw(field(1, 12, MONTH_NAMES))
    dom = draw(field(1, 31))
    dow = draw(field(0, 6, WEEKDAY_NAMES))
    ours_dom, ours_dow = dom, dow
    special = draw(st.sampled_from(["none", "none", "L", "nth", "last"]))
    if special == "L":
        ours_dom = dom = "L"
        ours_dow = dow = "*"
    elif special in ("nth", "last"):
        ours_dom = dom = "*"
        weekday = draw(st.integers(0, 6))
        if special == "nth":
            k = draw(st.integers(1, 5))
            ours_dow = dow = f"{weekday}#{k}"
        else:
            ours_dow, dow = f"{weekday}L", f"L{weekday}"
    day_or = not (dom.startswith("*") or dow.startswith("*"))
    ours = f"{minute} {hour} {ours_dom} {month} {ours_dow}"
    theirs = f"{minute} {hour} {dom} {month} {dow}"
    return ours, theirs, day_or


def _compiles(line: str) -> bool:
    try:
        CronTrigger.from_crontab(line, "UTC")
    except ValueError:
        return False  # e.g. '0 0 31 2 *': rejected as never matching, croniter loops or raises
    return True


NON_DST_ZONES = ["UTC", "Asia/Kolkata", "Asia/Tokyo", "+05:45", "-03:30"]


@SETTINGS
@given(
    line=crontab_lines().filter(lambda t: _compiles(t[0])),
    zone=st.sampled_from(NON_DST_ZONES),
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31)),
)
def test_from_crontab_matches_croniter(
    line: tuple[str, str, bool], zone: str, start: datetime
) -> None:
    ours, theirs, day_or = line
    trigger = CronTrigger.from_crontab(ours, timezone=zone)
    tz = trigger.timezone
    begin = start.replace(tzinfo=tz)
    got = fires(trigger, begin, 6)
    # croniter's first result is strictly after its start: start it a microsecond early so both
    # include a start that matches.
    it = croniter(theirs, begin - timedelta(microseconds=1), day_or=day_or)
    expected = [it.get_next(datetime) for _ in range(6)]
    assert [g.astimezone(UTC) for g in got] == [e.astimezone(UTC) for e in expected], (
        ours,
        theirs,
        day_or,
    )
    assert_strictly_increasing(got)


def _keyword_trigger(**fields: Any) -> CronTrigger:
    """The keyword-dialect trigger, skipping the example where its fields are refused only
    because a step is longer than its range ('0-1/2'), which crontab lines accept."""
    try:
        return CronTrigger(**fields)
    except ValueError as error:
        assume("total range of the expression" not in str(error))
        raise


@settings(SETTINGS, max_examples=60)
@given(line=crontab_lines().filter(lambda t: _compiles(t[0])))
def test_keyword_dialect_agrees_with_crontab_dialect(line: tuple[str, str, bool]) -> None:
    """The same schedule written both ways, where the day fields AND in both dialects."""
    ours, _, _ = line
    minute, hour, dom, month, dow = ours.split(" ")
    if (
        (not dom.startswith("*") and not dow.startswith("*"))
        or dom == "L"
        or "#" in dow
        or dow.endswith("L")
    ):
        return  # ORed day fields and Quartz specials exist in the crontab dialect only

    def keyword_dow(item: str) -> str:
        # crontab numbers (0 = Sunday) -> keyword numbers (0 = Monday); names mean the same
        def one(token: str) -> str:
            return str((int(token) - 1) % 7) if token.isdigit() else token

        if item.startswith("*"):
            return item.replace("*", "sun-sat" if "/" not in item else "*")
        head, _, step = item.partition("/")
        if "-" not in head and step:
            return one(head) + "/" + step
        parts = [one(p) for p in head.split("-")]
        return "-".join(parts) + (f"/{step}" if step else "")

    if dow != "*" and any(
        "/" in item or ("-" in item and item.split("-")[0] in ("0", "sun"))
        for item in dow.split(",")
    ):
        return  # steps and ranges starting on Sunday do not translate item by item
    keyword = _keyword_trigger(
        month=month,
        day=dom,
        day_of_week=",".join(map(keyword_dow, dow.split(","))) if dow != "*" else "*",
        hour=hour,
        minute=minute,
        second=0,
        timezone="UTC",
    )
    crontab = CronTrigger.from_crontab(ours, timezone="UTC")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert fires(keyword, start, 5) == fires(crontab, start, 5), (ours, keyword)


# -- DST: brute force over the minutes around every transition --------------------------------

DST_ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST
    "America/Havana",  # the change skips / repeats midnight's neighbour hours
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/Santiago",  # changes at midnight local time
    "Europe/Dublin",  # "negative" DST in tzdata
]


@functools.cache
def transitions(zone: str) -> list[datetime]:
    """UTC days (2019-2031) on which the zone's offset changes."""
    tz = ZoneInfo(zone)
    days = []
    t = datetime(2019, 1, 1, 12, tzinfo=UTC)
    previous = t.astimezone(tz).utcoffset()
    while t.year < 2032:
        t += timedelta(days=1)
        offset = t.astimezone(tz).utcoffset()
        if offset != previous:
            days.append(t - timedelta(days=1))
        previous = offset
    return days


@st.composite
def dst_lines(draw: st.DrawFn) -> str:
    minute = draw(st.one_of(st.just("*/15"), st.just("*/20"), field(0, 59, star_weight=1)))
    hour = draw(
        st.one_of(st.just("*"), st.just("*/2"), st.just("0-3"), field(0, 23, star_weight=1))
    )
    return f"{minute} {hour} * * *"


def _allowed(expr: str) -> tuple[set[int], set[int]]:
    expanded = croniter(expr).expanded
    minutes = set(range(60)) if expanded[0] == ["*"] else set(expanded[0])
    hours = set(range(24)) if expanded[1] == ["*"] else set(expanded[1])
    return minutes, hours


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    line=dst_lines(),
    zone=st.sampled_from(DST_ZONES),
    pick=st.integers(0, 10_000),
    keyword=st.booleans(),
)
def test_dst_transitions_against_brute_force(
    line: str, zone: str, pick: int, keyword: bool
) -> None:
    days = transitions(zone)
    day = days[pick % len(days)]
    tz = ZoneInfo(zone)
    start = day - timedelta(hours=2)
    end = day + timedelta(hours=26)
    minutes, hours = _allowed(line)
    minute_text, hour_text = line.split(" ")[:2]
    follows_real_time = minute_text.startswith("*") or hour_text.startswith("*")
    expected = brute_force(
        lambda wall: wall.minute in minutes and wall.hour in hours,
        tz,
        start,
        end,
        follows_real_time=follows_real_time,
    )
    if keyword:
        trigger = _keyword_trigger(hour=hour_text, minute=minute_text, timezone=zone)
    else:
        trigger = CronTrigger.from_crontab(line, timezone=zone)
    got = []
    previous = None
    while True:
        nxt = trigger.get_next_trigger_time(UTC, previous, start)
        if nxt is None or nxt >= end:
            break
        got.append(nxt)
        previous = nxt
    assert [(g.isoformat(), g.utcoffset()) for g in got] == [
        (e.isoformat(), e.utcoffset()) for e in expected
    ], (line, zone, day)
    assert_strictly_increasing(got)


@pytest.mark.parametrize("zone", DST_ZONES)
def test_every_transition_2019_2031(zone: str) -> None:
    """Fixed-time and real-time schedules around every transition of twelve years."""
    tz = ZoneInfo(zone)
    quarter = timedelta(minutes=15)
    for day in transitions(zone):
        start, end = day - timedelta(hours=6), day + timedelta(hours=30)
        for expr in (
            "30 * * * *",
            "*/15 * * * *",
            "0,45 0-3 * * *",
            "30 1,2 * * *",
            "15 0,1 * * *",
        ):
            minutes, hours = _allowed(expr)
            trigger = CronTrigger.from_crontab(expr, timezone=zone)
            expected = brute_force(
                lambda w, m=minutes, h=hours: w.minute in m and w.hour in h,
                tz,
                start,
                end,
                follows_real_time=expr.split()[0].startswith("*")
                or expr.split()[1].startswith("*"),
                step=quarter,
            )
            got = [t for t in fires(trigger, start, len(expected) + 1, tz) if t < end]
            assert iso(got) == iso(expected), (zone, day, expr)


def test_fixed_offset_zone_needs_no_dst_handling() -> None:
    trigger = CronTrigger.from_crontab("30 2 * * *", timezone=timezone(timedelta(hours=1)))
    got = fires(trigger, datetime(2026, 3, 28, tzinfo=UTC), 2)
    assert [g.isoformat() for g in got] == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T02:30:00+01:00",
    ]


# -- keyword dialect against a day-by-day oracle built from sets, not from expressions ---------

ORDINAL_WORDS = ("1st", "2nd", "3rd", "4th", "5th")
KW_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@st.composite
def keyword_schedules(draw: st.DrawFn) -> tuple[dict[str, str], dict[str, Any]]:
    """Random value sets for each field, and keyword expressions spelling them."""
    sets: dict[str, Any] = {}
    fields: dict[str, str] = {}

    def spell(values: list[int], names: tuple[str, ...] = (), offset: int = 0) -> str:
        return ",".join(
            names[v - offset] if names and draw(st.booleans()) else str(v) for v in values
        )

    if draw(st.booleans()):
        years = sorted(draw(st.sets(st.integers(2026, 2031), min_size=1, max_size=3)))
        sets["year"], fields["year"] = set(years), spell(years)
    months = sorted(draw(st.sets(st.integers(1, 12), min_size=1, max_size=4)))
    sets["month"], fields["month"] = set(months), spell(months, MONTH_NAMES, 1)
    day_items: list[str] = []
    numbers = sorted(draw(st.sets(st.integers(1, 31), max_size=3)))
    day_items += [str(n) for n in numbers]
    specials = draw(
        st.lists(
            st.tuples(st.sampled_from([*ORDINAL_WORDS, "last"]), st.integers(0, 6)), max_size=2
        )
    )
    if draw(st.booleans()):
        day_items.append("last")
    sets["day_numbers"], sets["day_specials"], sets["day_last"] = (
        set(numbers),
        specials,
        "last" in day_items,
    )
    day_items += [f"{word} {KW_WEEKDAYS[wd]}" for word, wd in specials]
    if day_items:
        fields["day"] = ",".join(day_items)
    if draw(st.integers(0, 4)) == 0:
        weeks = sorted(draw(st.sets(st.integers(1, 53), min_size=1, max_size=20)))
        sets["week"], fields["week"] = set(weeks), spell(weeks)
    if draw(st.booleans()):
        dows = sorted(draw(st.sets(st.integers(0, 6), min_size=1, max_size=4)))
        sets["day_of_week"], fields["day_of_week"] = set(dows), spell(dows, KW_WEEKDAYS)
    hours = sorted(draw(st.sets(st.integers(0, 23), min_size=1, max_size=3)))
    minutes = sorted(draw(st.sets(st.integers(0, 59), min_size=1, max_size=3)))
    sets["hour"], fields["hour"] = set(hours), spell(hours)
    sets["minute"], fields["minute"] = set(minutes), spell(minutes)
    fields["second"] = "0"
    return fields, sets


def _oracle_day(sets: dict[str, Any], day: date) -> bool:
    import calendar

    ndays = calendar.monthrange(day.year, day.month)[1]
    if "year" in sets and day.year not in sets["year"]:
        return False
    if day.month not in sets["month"]:
        return False
    if sets["day_numbers"] or sets["day_specials"] or sets["day_last"]:
        ok = day.day in sets["day_numbers"] or (sets["day_last"] and day.day == ndays)
        for word, wd in sets["day_specials"]:
            if day.weekday() != wd:
                continue
            if word == "last":
                ok = ok or day.day + 7 > ndays
            else:
                ok = ok or (day.day - 1) // 7 + 1 == ORDINAL_WORDS.index(word) + 1
        if not ok:
            return False
    if "week" in sets and day.isocalendar()[1] not in sets["week"]:
        return False
    return "day_of_week" not in sets or day.weekday() in sets["day_of_week"]


@settings(SETTINGS, max_examples=80)
@given(
    schedule=keyword_schedules(),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31)),
)
def test_keyword_fields_match_a_day_by_day_oracle(schedule: Any, start: datetime) -> None:
    fields, sets = schedule
    try:
        trigger = CronTrigger(**fields, timezone="UTC")
    except ValueError as exc:
        message = str(exc)
        trigger = None
    if trigger is None:
        assert "never match" in message
        return
    begin = start.replace(tzinfo=UTC)
    end = begin + timedelta(days=3 * 366)
    expected: list[datetime] = []
    day = begin.date()
    while len(expected) < 6 and day < end.date():
        if _oracle_day(sets, day):
            for hour in sorted(sets["hour"]):
                for minute in sorted(sets["minute"]):
                    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                    if begin <= moment < end:
                        expected.append(moment)
        day += timedelta(days=1)
    expected = expected[:6]
    got = [t for t in fires(trigger, begin, 6) if t < end]
    assert got == expected[: len(got)] and len(got) == len(expected), fields
