"""Conversions at the edge: time zones, aware datetimes and callable references.

Everything that reaches the scheduler loop has passed through here, so the loop only ever sees
aware datetimes, real ``tzinfo`` objects and callables. Each function raises ``TypeError`` or
``ValueError`` naming the offending value and what would have been accepted.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from asyncz.core.errors import (
    AsynczLookupError,
    ConversionError,
    ConversionTypeError,
)

__all__ = [
    "ConversionError",
    "ConversionTypeError",
    "callable_name",
    "check_callable_args",
    "datetime_from_us",
    "fixed_epoch",
    "get_localzone",
    "localize",
    "obj_to_ref",
    "ref_to_obj",
    "maybe_ref",
    "reject_unknown_options",
    "now",
    "set_clock_source",
    "set_local_zone_source",
    "timezone_name",
    "to_datetime",
    "to_seconds",
    "to_timezone",
    "utc_timestamp_us",
]

UTC = timezone.utc
_ZONE_UTC = ZoneInfo("UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_OFFSET_RE = re.compile(r"^(?:UTC)?([+-])(\d{2}):?(\d{2})$")
#: Dates and times whose fields are not zero-padded ("2022-8-1 5:16:12+02:30"), which
#: ``datetime.fromisoformat`` refuses: year, month, day, hour, minute, second, fraction, offset.
_LOOSE_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[ Tt](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:[.,](\d{1,6}))?)?\s*([Zz]|[+-]\d{2}:?\d{2})?)?"
)


#: What :func:`now` asks for the time: the ``datetime`` class, or a stand-in with a ``now(tz)``.
_clock: Any = datetime


def set_clock_source(source: Any | None) -> None:
    """Make :func:`now` return ``source.now(UTC)`` (``source`` is like the ``datetime`` class).

    ``None`` or ``datetime`` itself restores the real clock. ``asyncz.schedulers.base`` calls
    this when its ``datetime`` attribute is replaced, as tests freezing time do.
    """
    global _clock
    _clock = datetime if source is None else source


def now() -> datetime:
    """The current time (UTC) for the scheduler's API: start time, snapshots, first run times
    of added tasks, manual runs. The event loop and the executors read the real clock."""
    return _clock.now(UTC)  # type: ignore[no-any-return]


#: What :func:`get_localzone` asks instead of tzlocal, when set (see set_local_zone_source).
_local_zone_source: Callable[[], Any] | None = None


def set_local_zone_source(source: Callable[[], Any] | None) -> None:
    """Make :func:`get_localzone` return what ``source()`` returns (a tzinfo or a zone name).

    ``None``, or :func:`get_localzone` itself, goes back to asking tzlocal. ``asyncz.utils``
    calls this when its ``get_localzone`` attribute is replaced, as tests do to pin the local
    zone, so that the scheduler and the triggers see the replacement too.
    """
    global _local_zone_source
    _local_zone_source = None if source is get_localzone else source


def get_localzone() -> tzinfo:
    """The local time zone (through tzlocal), falling back to UTC where it cannot be found."""
    source = _local_zone_source
    if source is not None:
        zone = source()
        if zone is not None:
            return to_timezone(zone, "the local zone")
    try:
        import tzlocal

        return tzlocal.get_localzone()
    except Exception:  # a misconfigured host must not stop the scheduler from starting
        return UTC


def to_timezone(value: str | tzinfo | None, field: str = "timezone") -> tzinfo:
    """Turn a zone name, a fixed offset (``"+02:00"``) or a tzinfo into a tzinfo.

    ``None`` means the local zone. pytz zones are converted to their zoneinfo equivalent so
    that plain datetime arithmetic is correct across DST.
    """
    kind = type(value)
    if kind is ZoneInfo or kind is timezone:  # the common case: nothing to convert
        return value  # type: ignore[return-value]
    if value is None:
        return get_localzone()
    if isinstance(value, str):
        if value == "Z":
            return UTC
        if value.upper() == "UTC":
            return _ZONE_UTC  # the tz database's UTC, as Asyncz gives (same instants as UTC)
        match = _OFFSET_RE.match(value)
        if match:
            sign, hours, minutes = match.groups()
            delta = timedelta(hours=int(hours), minutes=int(minutes))
            return timezone(-delta if sign == "-" else delta)
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{field}={value!r} is not a known time zone; use an IANA name such as "
                "'Europe/Berlin' or 'UTC', or a fixed offset such as '+02:00'"
            ) from None
    if isinstance(value, tzinfo):
        zone = getattr(value, "zone", None)  # pytz
        if isinstance(zone, str) and hasattr(value, "localize"):
            return to_timezone(zone, field)
        return value
    raise ConversionTypeError(
        f"Expected tzinfo, got {type(value).__name__} instead: {field}={value!r}; give a "
        "tzinfo, an IANA zone name such as 'Europe/Berlin' or a fixed offset such as '+02:00'"
    )


def timezone_name(tz: tzinfo) -> str:
    """A name :func:`to_timezone` turns back into the same zone, for stored trigger state."""
    if tz is UTC:
        return "UTC"
    if isinstance(tz, ZoneInfo):
        return tz.key
    if isinstance(tz, timezone):
        offset = tz.utcoffset(None)
        total = int(offset.total_seconds()) // 60
        sign = "-" if total < 0 else "+"
        hours, minutes = divmod(abs(total), 60)
        return f"{sign}{hours:02d}:{minutes:02d}"
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if isinstance(key, str):
        return key
    raise ValueError(f"the time zone {tz!r} has no name that could be stored; use a zoneinfo zone")


def to_datetime(
    value: datetime | date | str | None,
    tz: tzinfo | str | None,
    field: str,
    *,
    allow_none: bool = True,
) -> datetime | None:
    """Turn a datetime, a date or an ISO 8601 string into an aware datetime.

    Naive values are taken as wall time in ``tz`` (required then; a zone name or a pytz zone
    is accepted too). A date means its midnight. Strings whose fields are not zero-padded
    (``"2022-8-1 5:16:12"``) are accepted as well.
    """
    if value is None:
        if allow_none:
            return None
        raise ConversionTypeError(f"{field} is required, got None")
    if isinstance(value, str):
        original = value
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            value = _parse_loose(text, original, field)
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    elif not isinstance(value, datetime):
        raise ConversionTypeError(
            f"{field} must be a datetime, a date or an ISO 8601 string, "
            f"got {type(value).__name__} {value!r}"
        )
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        if tz is None:
            raise ConversionError(
                f"{field}={value!r} is naive and no time zone was given to place it"
            )
        return localize(value, tz)
    return value


def _parse_loose(text: str, original: str, field: str) -> datetime:
    """A date string that ``fromisoformat`` refused: fields that are not zero-padded."""
    match = _LOOSE_DATETIME_RE.fullmatch(text)
    try:
        if match is None:
            raise ValueError(original)
        year, month, day, hour, minute, second, fraction, offset = match.groups()
        zone: tzinfo | None = None
        if offset is not None:
            offset_match = _OFFSET_RE.match(offset)
            if offset_match is None:
                raise ValueError(offset)
            sign, hours, minutes = offset_match.groups()
            delta = timedelta(hours=int(hours), minutes=int(minutes))
            zone = timezone(-delta if sign == "-" else delta)
        return datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0),
            int(second or 0), int((fraction or "0").ljust(6, "0")), tzinfo=zone,
        )  # fmt: skip
    except ValueError:
        raise ConversionError(
            f"{field}={original!r} is not an ISO 8601 date or datetime, such as "
            "'2026-03-29' or '2026-03-29 02:30:00+02:00'"
        ) from None


def localize(naive: datetime, tz: tzinfo | str) -> datetime:
    """Place a naive wall time in ``tz``; a wall time inside a DST gap moves forward past it.

    ``tz`` may also be a zone name or a pytz zone (converted with :func:`to_timezone`).
    """
    if not isinstance(tz, (ZoneInfo, timezone)):
        tz = to_timezone(tz, "tz")  # pytz zones give wrong offsets with replace(tzinfo=)
    aware = naive.replace(tzinfo=tz)
    # A nonexistent wall time does not survive the round trip through UTC.
    round_trip = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if round_trip != naive:
        return aware.astimezone(UTC).astimezone(tz)
    return aware


def utc_timestamp_us(value: datetime) -> int:
    """Microseconds since the Unix epoch: an exact, cheap sort key for aware datetimes."""
    # A module constant: building the timedelta on every call doubled the cost of this hot path.
    return (value - _EPOCH) // _ONE_US


#: Zone names that mean UTC in the tz database (zones with no transition, ever).
_UTC_KEYS = frozenset(
    {
        "UTC", "UCT", "Universal", "Zulu", "GMT", "GMT0", "GMT+0", "GMT-0", "Greenwich",
        "Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "Etc/GMT", "Etc/GMT0", "Etc/GMT+0",
        "Etc/GMT-0", "Etc/Greenwich",
    }
)  # fmt: skip
#: Per zone with one fixed offset: the epoch as a datetime in that zone (None: not fixed).
_FIXED_EPOCHS: dict[tzinfo, datetime | None] = {UTC: _EPOCH}
#: Instants at which a zone named like UTC must have offset zero to be taken for UTC (a zone
#: built with ZoneInfo.from_file can carry any name).
_UTC_PROBES = tuple(datetime(year, 1, 1, tzinfo=UTC) for year in (1850, 1970, 2000, 2038, 2200))


def fixed_epoch(tz: tzinfo) -> datetime | None:
    """The Unix epoch as a datetime in ``tz`` if ``tz`` has one fixed offset (UTC under any of
    its names, ``+02:00``), else None. Adding microseconds to it gives the same datetime as
    converting to ``tz``, at half the cost."""
    try:
        return _FIXED_EPOCHS[tz]
    except KeyError:
        pass
    except TypeError:  # an unhashable tzinfo
        return None
    epoch: datetime | None = None
    if isinstance(tz, timezone) or (
        isinstance(tz, ZoneInfo)
        and tz.key in _UTC_KEYS
        and all(not moment.astimezone(tz).utcoffset() for moment in _UTC_PROBES)
    ):
        epoch = _EPOCH.astimezone(tz)
    if len(_FIXED_EPOCHS) < 256:
        _FIXED_EPOCHS[tz] = epoch
    return epoch


def datetime_from_us(value: int, tz: tzinfo = UTC) -> datetime:
    """The aware datetime ``value`` microseconds after the Unix epoch, in ``tz`` (exact).

    In a zone with one fixed offset this is a single addition (see :func:`fixed_epoch`):
    turning stored timestamps into datetimes is a hot path of loading tasks.
    """
    epoch = fixed_epoch(tz)
    if epoch is not None:
        return epoch + _ONE_US * value
    return (_EPOCH + _ONE_US * value).astimezone(tz)


def to_seconds(
    value: float | int | timedelta | None, field: str, *, allow_none: bool = True
) -> float | None:
    """A positive number of seconds from a number or a timedelta (``None`` where allowed)."""
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"{field} is required, got None")
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{field} must be a number of seconds or a timedelta, got {type(value).__name__} "
            f"{value!r}"
        )
    if not value > 0:  # also rejects NaN
        hint = " or None" if allow_none else ""
        raise ValueError(f"{field} must be a positive number of seconds{hint}, got {value!r}")
    return float(value)


def callable_name(fn: Callable[..., Any]) -> str:
    """A human-readable name for a callable (used as the default task name).

    ``TypeError`` for an object that is not callable.
    """
    for attr in ("__qualname__", "__name__"):
        name = getattr(fn, attr, None)
        if isinstance(name, str):
            return name
    func = getattr(fn, "func", None)  # functools.partial
    if func is not None and callable(func):
        return callable_name(func)
    if not callable(fn):
        raise TypeError(f"{fn!r} is not callable, so it has no callable name")
    return type(fn).__qualname__


def _reference_error(message: str, obj: object, hint: str) -> ValueError:
    """Asyncz's message, caused by an error that names the object and what to do instead."""
    error = ValueError(message)
    error.__cause__ = ValueError(
        f"{obj!r} cannot be imported back by a 'module:qualname' name; {hint}"
    )
    return error


def obj_to_ref(obj: Callable[..., Any]) -> str:
    """The ``"module:qualname"`` reference of a callable that can be imported back.

    A method bound to an instance that is a module-level name gets
    ``"module:instance.method"``. Raises ``ValueError`` saying why for lambdas, nested
    functions, partials and methods of other instances, which no persistent store can
    re-import.
    """
    if isinstance(obj, functools.partial):
        raise _reference_error(
            "Cannot create a reference to a partial()",
            obj,
            "pass the function itself and give the arguments as the task's args/kwargs",
        )
    if inspect.ismethod(obj) and not inspect.isclass(obj.__self__):
        return _bound_method_ref(obj)
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise ValueError(
            f"{obj!r} has no __module__/__qualname__ and cannot be referenced by name; "
            "use a module-level function"
        )
    if "<lambda>" in qualname:
        raise _reference_error(
            "Cannot create a reference to a lambda", obj, "define a function at module level"
        )
    if "<locals>" in qualname:
        raise _reference_error(
            "Cannot create a reference to a nested function",
            obj,
            "define it at module level and pass what it closed over as arguments",
        )
    ref = f"{module}:{qualname}"
    try:
        found = ref_to_obj(ref)
    except (ImportError, LookupError):
        found = None
    if found is not obj and getattr(found, "__func__", None) is not getattr(obj, "__func__", 0):
        raise ValueError(
            f"{ref!r} does not import back to {obj!r} (is it decorated or shadowed?); "
            'pass a "module:qualname" string that does'
        )
    return ref


def _bound_method_ref(method: Any) -> str:
    """``"module:instance.method"`` for a method of an instance bound to a module-level name."""
    instance = method.__self__
    module_name = getattr(method, "__module__", None) or type(instance).__module__
    module = sys.modules.get(module_name) if isinstance(module_name, str) else None
    names = [
        name
        for name, value in list(vars(module).items() if module is not None else ())
        if value is instance and not name.startswith("__")
    ]
    for name in names:
        ref = f"{module_name}:{name}.{method.__name__}"
        try:
            found = ref_to_obj(ref)
        except (ImportError, LookupError):
            continue
        if getattr(found, "__self__", None) is instance and (
            getattr(found, "__func__", None) is method.__func__
        ):
            return ref
    raise ValueError(
        f"{method!r} is a method bound to an instance that is not a module-level name of "
        f"{module_name!r}, so it cannot be referenced by name; use a module-level function, "
        "a classmethod/staticmethod, or a method of a module-level instance"
    )


def ref_to_obj(ref: str) -> Any:
    """Import the object a ``"module:qualname"`` reference names.

    ``TypeError`` for a non-string, :class:`ConversionError` for a string that is not a
    reference, :class:`~asyncz.exceptions.AsynczLookupError` (a ``LookupError``) for a module
    or a name that cannot be found.
    """
    if not isinstance(ref, str):
        raise TypeError(f"a reference must be a 'module:qualname' string, got {ref!r}")
    module_name, sep, qualname = ref.partition(":")
    if not sep or not module_name or not qualname:
        raise ConversionError(f"{ref!r} is not a reference; write it as 'package.module:name.attr'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise AsynczLookupError(
            f"cannot import module {module_name!r} of reference {ref!r}: {exc}"
        ) from exc
    for name in qualname.split("."):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise AsynczLookupError(f"{ref!r}: {name!r} not found in {obj!r}") from None
    return obj


def maybe_ref(value: Any) -> Any:
    """Resolve ``value`` if it is a reference string, otherwise return it unchanged."""
    return ref_to_obj(value) if isinstance(value, str) else value


def reject_unknown_options(owner: str, unknown: Mapping[str, Any], valid: Iterable[str]) -> None:
    """Raise ``TypeError`` naming every unknown option, the closest valid one and all of them.

    Silently accepted typos are how ``CronTrigger(hours=1)`` came to fire every second in
    Asyncz; every plugin constructor that takes options calls this instead.
    """
    if not unknown:
        return
    valid = sorted(valid)
    parts = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        parts.append(f"{name!r}{hint}")
    raise TypeError(
        f"{owner} got unknown argument(s) {', '.join(parts)}; valid arguments are "
        f"{', '.join(valid)}"
    )


def check_callable_args(
    fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> None:
    """Raise ``ValueError`` if ``fn(*args, **kwargs)`` could not bind its parameters.

    Checked when a task is added, so that a wrong argument fails there and not at every run.
    The message says what is wrong (as Asyncz words it); the exception it is raised from
    names the callable's signature and the arguments. The signature checked is the callable's
    own: a wrapper made with ``functools.wraps`` is checked as the wrapper, which is what runs.
    Callables whose signature cannot be read (some builtins) are not checked.
    """
    bare = not args and not kwargs
    if bare:
        try:
            if fn in _BARE_FITS:
                return
        except TypeError:  # unhashable callable
            bare = False
    signature = _signature(fn)
    if signature is None:
        return
    try:
        signature.bind(*args, **kwargs)
        if bare:
            _BARE_FITS.add(fn)
    except TypeError as exc:
        detail = TypeError(
            f"the arguments args={tuple(args)!r}, kwargs={dict(kwargs)!r} do not fit "
            f"{callable_name(fn)}{signature}: {exc}"
        )
        raise ValueError(_mismatch(signature, args, kwargs) or str(exc)) from detail


def _mismatch(
    signature: inspect.Signature, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> str | None:
    """What keeps ``args``/``kwargs`` from binding to ``signature``, the first problem found."""
    kind = inspect.Parameter
    given = len(args)
    taken = 0  # positional arguments consumed so far
    unmatched = dict.fromkeys(kwargs)  # keyword arguments no parameter took yet, in order
    in_both: list[str] = []
    positional_by_name: list[str] = []
    missing: list[str] = []
    missing_keyword: list[str] = []
    var_positional = var_keyword = False
    for param in signature.parameters.values():
        if param.kind is kind.VAR_POSITIONAL:
            var_positional = True
        elif param.kind is kind.VAR_KEYWORD:
            var_keyword = True
        elif param.kind is kind.KEYWORD_ONLY:
            if param.name in unmatched:
                del unmatched[param.name]
            elif param.default is kind.empty:
                missing_keyword.append(param.name)
        elif taken < given:
            taken += 1
            if param.kind is kind.POSITIONAL_OR_KEYWORD and param.name in unmatched:
                del unmatched[param.name]
                in_both.append(param.name)
        elif param.name in unmatched:
            del unmatched[param.name]
            if param.kind is kind.POSITIONAL_ONLY:
                positional_by_name.append(param.name)
        elif param.default is kind.empty:
            missing.append(param.name)
    if in_both:
        return f"The following arguments are supplied in both args and kwargs: {', '.join(in_both)}"
    if positional_by_name:
        return (
            "The following arguments cannot be given as keyword arguments: "
            f"{', '.join(positional_by_name)}"
        )
    if missing:
        return f"The following arguments have not been supplied: {', '.join(missing)}"
    if missing_keyword:
        return (
            "The following keyword-only arguments have not been supplied in kwargs: "
            f"{', '.join(missing_keyword)}"
        )
    if taken < given and not var_positional:
        return (
            "The list of positional arguments is longer than the target callable can handle "
            f"(allowed: {taken}, given in args: {given})"
        )
    if unmatched and not var_keyword:
        return (
            "The target callable does not accept the following keyword arguments: "
            f"{', '.join(unmatched)}"
        )
    return None


_SIGNATURES: dict[Any, inspect.Signature | None] = {}
#: Callables whose remembered signature takes no arguments: many tasks of one callable.
_BARE_FITS: set[Any] = set()


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    """``inspect.signature(fn)``, remembered: tasks are added in bulk, often with one callable."""
    try:
        return _SIGNATURES[fn]
    except KeyError:
        pass
    except TypeError:  # unhashable callable
        return _read_signature(fn)
    if len(_SIGNATURES) > 1024:
        _SIGNATURES.clear()  # many one-off callables: do not keep them all alive
        _BARE_FITS.clear()
    signature = _SIGNATURES[fn] = _read_signature(fn)
    return signature


def _read_signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(fn, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
