from __future__ import annotations

import functools
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncz.core.converters import (
    datetime_from_us,
    localize,
    obj_to_ref,
    ref_to_obj,
    reject_unknown_options,
    timezone_name,
    to_datetime,
    to_seconds,
    to_timezone,
    utc_timestamp_us,
)

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def module_level() -> None:
    return None


class Holder:
    @classmethod
    def make(cls) -> None:
        return None

    def method(self) -> None:
        return None


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("UTC", "UTC"),
        ("Europe/Berlin", "Europe/Berlin"),
        ("+05:30", "+05:30"),
        ("-08:00", "-08:00"),
        (UTC, "UTC"),
        (BERLIN, "Europe/Berlin"),
    ],
)
def test_time_zones_round_trip_through_their_names(value: object, name: str) -> None:
    tz = to_timezone(value)  # type: ignore[arg-type]
    assert timezone_name(tz) == name
    assert to_timezone(timezone_name(tz)).utcoffset(datetime(2026, 1, 1)) == tz.utcoffset(
        datetime(2026, 1, 1)
    )


def test_bad_time_zones_name_the_value() -> None:
    with pytest.raises(ValueError, match="'Nowhere/City' is not a known time zone"):
        to_timezone("Nowhere/City")
    with pytest.raises(TypeError, match="Expected tzinfo, got int instead: timezone=5"):
        to_timezone(5)  # type: ignore[arg-type]
    assert to_timezone(None) is not None  # the local zone


def test_to_datetime_accepts_datetimes_dates_and_iso_strings() -> None:
    assert to_datetime("2026-03-29T02:30:00Z", None, "f") == datetime(
        2026, 3, 29, 2, 30, tzinfo=UTC
    )
    assert to_datetime(date(2026, 5, 1), UTC, "f") == datetime(2026, 5, 1, tzinfo=UTC)
    naive = to_datetime(datetime(2026, 7, 1, 12), BERLIN, "f")
    assert naive is not None and naive.utcoffset() == timedelta(hours=2)
    assert to_datetime(None, UTC, "f") is None
    with pytest.raises(TypeError, match="f is required"):
        to_datetime(None, UTC, "f", allow_none=False)
    with pytest.raises(ValueError, match="run_at='tomorrow' is not an ISO 8601"):
        to_datetime("tomorrow", UTC, "run_at")
    with pytest.raises(ValueError, match="naive and no time zone"):
        to_datetime(datetime(2026, 1, 1), None, "f")
    with pytest.raises(TypeError, match="got int 3"):
        to_datetime(3, UTC, "f")  # type: ignore[arg-type]


def test_localize_moves_a_wall_time_in_a_dst_gap_past_the_gap() -> None:
    in_gap = localize(datetime(2026, 3, 29, 2, 30), BERLIN)
    assert in_gap.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert in_gap.utcoffset() == timedelta(hours=2)
    folded = localize(datetime(2026, 10, 25, 2, 30), BERLIN)
    assert folded.utcoffset() == timedelta(hours=2)  # the first of the two 02:30s


def test_utc_timestamp_us_is_exact() -> None:
    moment = datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert utc_timestamp_us(moment) == 1767225600000001
    assert utc_timestamp_us(moment.astimezone(BERLIN)) == 1767225600000001


def test_references() -> None:
    assert obj_to_ref(module_level) == "tests.core.test_converters:module_level"
    assert ref_to_obj("tests.core.test_converters:Holder.make") == Holder.make
    assert obj_to_ref(Holder.make) == "tests.core.test_converters:Holder.make"
    with pytest.raises(ValueError, match=r"^Cannot create a reference to a lambda$") as info:
        obj_to_ref(lambda: None)
    assert "define a function at module level" in str(info.value.__cause__)
    with pytest.raises(ValueError, match="bound to an instance that is not a module-level name"):
        obj_to_ref(Holder().method)
    with pytest.raises(ValueError, match=r"^Cannot create a reference to a partial\(\)$") as info:
        obj_to_ref(functools.partial(module_level))
    assert "functools.partial(<function module_level" in str(info.value.__cause__)
    with pytest.raises(ValueError, match="not a reference"):
        ref_to_obj("no_colon")
    with pytest.raises(LookupError, match="cannot import module"):
        ref_to_obj("no_such_module_abc:x")
    with pytest.raises(LookupError, match="'missing' not found"):
        ref_to_obj("tests.core.test_converters:missing")


def test_to_seconds_and_unknown_options() -> None:
    assert to_seconds(timedelta(minutes=1), "g") == 60.0
    assert to_seconds(None, "g") is None
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="positive"):
            to_seconds(bad, "g")
    with pytest.raises(TypeError):
        to_seconds("5", "g")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"'hours' \(did you mean 'hour'\?\); valid arguments"):
        reject_unknown_options("CronTrigger", {"hours": 1}, ["hour", "minute"])
    reject_unknown_options("X", {}, ["a"])


#: Zones with one fixed offset (the fast path) and zones with transitions (the conversion).
ZONES = [
    UTC,
    ZoneInfo("UTC"),
    ZoneInfo("Etc/UTC"),
    ZoneInfo("Etc/GMT"),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(-timedelta(hours=3)),
    BERLIN,
    ZoneInfo("America/New_York"),
    ZoneInfo("Australia/Lord_Howe"),
]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_US = utc_timestamp_us(datetime(1, 1, 2, tzinfo=UTC))
MAX_US = utc_timestamp_us(datetime(9999, 12, 30, tzinfo=UTC))


@given(st.integers(MIN_US, MAX_US), st.sampled_from(ZONES))
def test_datetime_from_us_is_the_conversion_of_the_timestamp(value: int, zone: object) -> None:
    # Oracle: the plain conversion of the UTC instant, field for field (fold included).
    expected = (EPOCH + timedelta(microseconds=value)).astimezone(zone)  # type: ignore[arg-type]
    got = datetime_from_us(value, zone)  # type: ignore[arg-type]
    assert got.tzinfo is expected.tzinfo
    assert (got.timetuple()[:6], got.microsecond, got.fold) == (
        expected.timetuple()[:6],
        expected.microsecond,
        expected.fold,
    )
    assert got.utcoffset() == expected.utcoffset()
    assert utc_timestamp_us(got) == value


def test_datetime_from_us_in_a_fold_and_for_odd_zones() -> None:
    # 02:30 happens twice in Berlin on 2026-10-25; the second is fold=1.
    second = utc_timestamp_us(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
    assert datetime_from_us(second, BERLIN).fold == 1
    assert datetime_from_us(0) == EPOCH and datetime_from_us(0).tzinfo is UTC

    class Unhashable(tzinfo):
        __hash__ = None  # type: ignore[assignment]

        def utcoffset(self, dt: datetime | None) -> timedelta:
            return timedelta(hours=1)

        def dst(self, dt: datetime | None) -> timedelta:
            return timedelta(0)

        def fromutc(self, dt: datetime) -> datetime:
            return dt + timedelta(hours=1)

    odd = Unhashable()
    assert datetime_from_us(0, odd).hour == 1


def test_a_zone_only_named_utc_is_converted_not_taken_for_utc() -> None:
    import zoneinfo
    from pathlib import Path

    files = [Path(root, "Europe", "Berlin") for root in zoneinfo.TZPATH]
    found = [path for path in files if path.is_file()]
    if not found:
        pytest.skip(f"no tz database file for Europe/Berlin in {zoneinfo.TZPATH}")
    with found[0].open("rb") as file:
        disguised = ZoneInfo.from_file(file, key="UTC")
    summer = utc_timestamp_us(datetime(2026, 7, 1, 12, tzinfo=UTC))
    assert datetime_from_us(summer, disguised).utcoffset() == timedelta(hours=2)
