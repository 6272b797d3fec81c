"""asyncz.utils as Asyncz users call it: zones, datetimes, references and argument checks."""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import asyncz.utils as utils
from asyncz.core import converters
from asyncz.exceptions import AsynczException, AsynczLookupError

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")


class PytzLikeZone(tzinfo):
    """Behaves like a pytz zone used without ``localize``: its first offset is local mean time.

    Stands in for pytz where it is not installed; the real one is tested below when it is.
    """

    zone = "Europe/London"

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(minutes=-1, seconds=-15)  # London's LMT, the pytz trap

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "LMT"

    def localize(self, dt: datetime) -> datetime:
        raise AssertionError("asyncz converts pytz zones instead of calling localize")


class Service:
    def greet(self, name: str) -> str:
        return f"hello {name}"


#: A module-level instance: its methods can be referenced as "module:service.greet".
service = Service()


# -- to_timezone ----------------------------------------------------------------------------


def test_to_timezone_keeps_none_and_tzinfos_as_given() -> None:
    assert utils.to_timezone(None) is None
    zone = PytzLikeZone()
    assert utils.to_timezone(zone) is zone
    assert utils.to_timezone("Europe/London") == LONDON
    assert utils.to_timezone("+02:00") == timezone(timedelta(hours=2))


def test_to_timezone_refuses_other_types_naming_the_value() -> None:
    with pytest.raises(TypeError, match="Expected tzinfo, got int instead: timezone=4;") as info:
        utils.to_timezone(4)  # type: ignore[arg-type]
    assert isinstance(info.value, AsynczException)
    assert "'Europe/Berlin'" in str(info.value)  # what would have been accepted


def test_the_kernel_turns_pytz_like_zones_into_zoneinfo() -> None:
    assert converters.to_timezone(PytzLikeZone()) == LONDON


# -- to_datetime ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-8-1", datetime(2022, 8, 1, tzinfo=LONDON)),
        ("2022-8-1 5:16:12", datetime(2022, 8, 1, 5, 16, 12, tzinfo=LONDON)),
        ("2022-8-1T5:16", datetime(2022, 8, 1, 5, 16, tzinfo=LONDON)),
        ("2022-8-1 5:16:12.5", datetime(2022, 8, 1, 5, 16, 12, 500000, tzinfo=LONDON)),
        ("2022-8-1T5:16:12Z", datetime(2022, 8, 1, 5, 16, 12, tzinfo=UTC)),
        (
            "2022-8-1T5:16:12+02:30",
            datetime(2022, 8, 1, 5, 16, 12, tzinfo=timezone(timedelta(hours=2, minutes=30))),
        ),
        (
            "2022-8-1 5:16:12 -0530",
            datetime(2022, 8, 1, 5, 16, 12, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
    ],
)
def test_date_strings_need_no_zero_padding(text: str, expected: datetime) -> None:
    got = utils.to_datetime(text, LONDON, "run_at")
    assert got == expected and got is not None
    assert got.utcoffset() == expected.utcoffset()
    assert converters.to_datetime(text, LONDON, "run_at") == expected  # the kernel's too


def test_naive_values_are_placed_in_a_pytz_like_zone_or_a_zone_name() -> None:
    summer = utils.to_datetime(datetime(2022, 8, 1, 12), PytzLikeZone(), "run_at")
    assert summer is not None and summer.utcoffset() == timedelta(hours=1)  # BST, not LMT
    assert utils.to_datetime(date(2022, 1, 1), "UTC", None) == datetime(2022, 1, 1, tzinfo=UTC)
    assert converters.localize(datetime(2022, 1, 1), PytzLikeZone()).utcoffset() == timedelta(0)
    assert utils.to_datetime(None, UTC, "x") is None
    assert utils.to_datetime("", UTC, "x") is None
    aware = datetime(2022, 8, 1, tzinfo=timezone(timedelta(hours=-1)))
    assert utils.to_datetime(aware, LONDON, "x") is aware


def test_to_datetime_errors_use_asyncz_messages_caused_by_ours() -> None:
    with pytest.raises(AsynczException, match=r"^Unsupported type for run_at: int\.$") as info:
        utils.to_datetime(92123, UTC, "run_at")  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)
    assert "got int 92123" in str(info.value.__cause__)

    with pytest.raises(AsynczException, match=r"^Invalid date string\.$") as info:
        utils.to_datetime("19700-12-1", UTC, "run_at")
    assert isinstance(info.value, ValueError)
    assert "run_at='19700-12-1' is not an ISO 8601" in str(info.value.__cause__)

    with pytest.raises(ValueError, match=r"^Invalid date string\.$"):
        utils.to_datetime("2022-13-1", None, "run_at")  # month 13 is no date in any zone

    with pytest.raises(AsynczException, match=r'^The "tz" argument must be specified if run_at'):
        utils.to_datetime("2022-8-1", None, "run_at")

    with pytest.raises(ValueError, match="tz='Nowhere/City' is not a known time zone"):
        utils.to_datetime("2022-8-1", "Nowhere/City", "run_at")


def test_the_kernel_still_names_the_value_in_its_own_errors() -> None:
    with pytest.raises(ValueError, match="start_at='2022-8-40' is not an ISO 8601") as info:
        converters.to_datetime("2022-8-40", UTC, "start_at")
    assert isinstance(info.value, AsynczException)
    with pytest.raises(TypeError, match="got list"):
        converters.to_datetime([], UTC, "start_at")  # type: ignore[arg-type]


def test_real_pytz_zones() -> None:
    pytz = pytest.importorskip("pytz")
    london = pytz.timezone("Europe/London")
    assert utils.to_timezone(london) is london
    placed = utils.to_datetime("2022-8-1 5:16:12", london, None)
    assert placed == london.localize(datetime(2022, 8, 1, 5, 16, 12))
    assert utils.datetime_repr(london.localize(datetime(2022, 5, 30, 7))) == (
        "2022-05-30 07:00:00 BST"
    )


# -- the local zone -------------------------------------------------------------------------


def test_replacing_utils_get_localzone_reaches_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    original = utils.get_localzone
    monkeypatch.setattr("asyncz.utils.get_localzone", lambda: PytzLikeZone())
    assert converters.get_localzone() == LONDON  # converted: no LMT offsets downstream
    assert converters.to_timezone(None) == LONDON
    from asyncz.schedulers import AsyncIOScheduler

    assert AsyncIOScheduler().timezone == LONDON
    monkeypatch.undo()
    assert utils.get_localzone is original is converters.get_localzone
    assert converters._local_zone_source is None


def test_a_replacement_returning_none_or_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(utils, "get_localzone", lambda: "Asia/Tokyo")
    assert converters.get_localzone() == ZoneInfo("Asia/Tokyo")
    monkeypatch.setattr(utils, "get_localzone", lambda: None)  # None: ask tzlocal again
    assert isinstance(converters.get_localzone(), tzinfo)


# -- references -----------------------------------------------------------------------------


def test_methods_of_module_level_instances_are_referenced_through_the_instance() -> None:
    ref = utils.obj_to_ref(service.greet)
    assert ref == f"{__name__}:service.greet"
    back = utils.ref_to_obj(ref)
    assert back.__self__ is service and back("you") == "hello you"
    assert utils.maybe_ref(ref)("me") == "hello me"


def test_methods_of_other_instances_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="not a module-level name of") as info:
        utils.obj_to_ref(Service().greet)
    assert "Service.greet" in str(info.value)


@pytest.mark.parametrize(
    ("obj", "message", "detail"),
    [
        (functools.partial(max, 1), "Cannot create a reference to a partial()", "args/kwargs"),
        (lambda: None, "Cannot create a reference to a lambda", "at module level"),
    ],
)
def test_reference_errors_say_what_to_do_in_their_cause(
    obj: Any, message: str, detail: str
) -> None:
    with pytest.raises(ValueError) as info:
        utils.obj_to_ref(obj)
    assert str(info.value) == message
    assert detail in str(info.value.__cause__)


def test_nested_functions() -> None:
    def nested() -> None:
        return None

    with pytest.raises(ValueError, match=r"^Cannot create a reference to a nested function$"):
        utils.obj_to_ref(nested)


def test_ref_to_obj_errors_are_asyncz_exceptions_too() -> None:
    with pytest.raises(AsynczException, match="'module' is not a reference") as info:
        utils.ref_to_obj("module")
    assert isinstance(info.value, ValueError)
    with pytest.raises(AsynczLookupError, match="cannot import module"):
        utils.ref_to_obj("no_such_module_xyz:thing")
    with pytest.raises(AsynczLookupError, match="'nothing' not found"):
        utils.ref_to_obj(f"{__name__}:nothing")
    with pytest.raises(TypeError):
        utils.ref_to_obj(object())  # type: ignore[arg-type]


def test_get_callable_name() -> None:
    assert utils.get_callable_name(service.greet) == "Service.greet"
    assert utils.get_callable_name(functools.partial(service.greet)) == "Service.greet"

    class Callable_:
        def __call__(self) -> None:
            return None

    assert utils.get_callable_name(Callable_()) == "test_get_callable_name.<locals>.Callable_"
    with pytest.raises(TypeError, match="is not callable"):
        utils.get_callable_name(object())  # type: ignore[arg-type]


# -- check_callable_args --------------------------------------------------------------------


def two(x: int, y: int, *, z: int, w: int = 0) -> None:
    return None


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((1, 2, 3), {"z": 1}, r"longer than the target callable can handle \(allowed: 2, "),
        ((1, 2), {"z": 1, "q": 2, "r": 3}, "does not accept the following keyword arguments: q, r"),
        ((1,), {"z": 1}, "have not been supplied: y$"),
        ((1, 2), {}, "keyword-only arguments have not been supplied in kwargs: z$"),
        ((1, 2), {"x": 1, "y": 1, "z": 1}, "supplied in both args and kwargs: x, y$"),
    ],
)
def test_check_callable_args_says_what_is_wrong(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        utils.check_callable_args(two, args, kwargs)
    cause = str(info.value.__cause__)
    assert "do not fit two(x: 'int', y: 'int', *, z: 'int', w: 'int' = 0)" in cause
    assert f"args={args!r}" in cause


def test_positional_only_parameters_given_by_name() -> None:
    with pytest.raises(ValueError, match=r"cannot be given as keyword arguments: value$"):
        utils.check_callable_args(object.__setattr__, ["blah"], {"value": 1})

    def takes_any_keyword(a: int, /, **kw: Any) -> None:
        return None

    utils.check_callable_args(takes_any_keyword, (1,), {"a": 2})  # "a" goes to **kw


def test_a_wrapper_is_checked_as_the_wrapper() -> None:
    def inner() -> None:
        return None

    @functools.wraps(inner)
    def wrapper(arg: int) -> None:
        inner()

    utils.check_callable_args(wrapper, (1,), {})
    with pytest.raises(ValueError, match="have not been supplied: arg"):
        utils.check_callable_args(wrapper, (), {})


# -- names re-exported lazily ---------------------------------------------------------------


def test_task_state_envelope_names_come_from_the_stores() -> None:
    persistence = pytest.importorskip("asyncz.stores.persistence")
    assert utils.TaskStateEnvelope is persistence.TaskStateEnvelope
    assert utils.TASK_STATE_ENVELOPE_VERSION == persistence.TASK_STATE_ENVELOPE_VERSION
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        utils.Nope  # noqa: B018


def test_a_persistent_record_keeps_a_module_level_instance_by_name() -> None:
    from asyncz.core.records import record_to_task, task_to_record
    from asyncz.tasks import Task
    from asyncz.triggers import IntervalTrigger

    task = Task(id="greeter", fn=service.greet, args=("you",), trigger=IntervalTrigger(seconds=5))
    record = task_to_record(task)
    assert record["fn"] == f"{__name__}:service.greet" and list(record["args"]) == ["you"]
    back = record_to_task(record)
    assert back.fn.__self__ is service and back.fn(*back.args) == "hello you"
