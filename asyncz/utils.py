"""Helpers users call: wrapping signature-less callables, time zones, callable references.

The functions Asyncz's ``asyncz.utils`` has, with its signatures. Most are the kernel's
converters themselves; ``to_timezone`` and ``to_datetime`` keep Asyncz's conventions (``None``
stays ``None``, a tzinfo is returned as given, Asyncz's error messages) on top of them.

Replacing ``asyncz.utils.get_localzone`` (as Asyncz's test fixtures do to pin the local zone)
also changes the local zone the scheduler and the triggers use.
"""

from __future__ import annotations

import functools
import sys
import types
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any, TypeVar

from asyncz.core import converters as _converters
from asyncz.core.converters import (
    ConversionError,
    ConversionTypeError,
    callable_name,
    check_callable_args,
    get_localzone,
    localize,
    maybe_ref,
    obj_to_ref,
    ref_to_obj,
)

__all__ = [
    "check_callable_args",
    "datetime_ceil",
    "datetime_repr",
    "datetime_to_utc_timestamp",
    "get_callable_name",
    "get_localzone",
    "localize",
    "make_async_function",
    "make_function",
    "maybe_ref",
    "normalize",
    "obj_to_ref",
    "ref_to_obj",
    "timedelta_seconds",
    "to_datetime",
    "to_float",
    "to_int",
    "to_timezone",
    "utc_timestamp_to_datetime",
]

T = TypeVar("T")

get_callable_name = callable_name

#: Names this module also offers, imported when first asked for (they live in the stores).
_LAZY = {
    "TASK_STATE_ENVELOPE_VERSION": "asyncz.stores.persistence",
    "TaskStateEnvelope": "asyncz.stores.persistence",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def to_timezone(value: str | tzinfo | None) -> tzinfo | None:
    """A tzinfo for ``value``: ``None`` stays ``None``, a tzinfo (pytz too) is returned as it is,
    a zone name (``"Europe/Berlin"``, ``"UTC"``) or a fixed offset (``"+02:00"``) becomes its zone.

    ``TypeError`` (also an ``AsynczException``) for anything else. The scheduler and the
    triggers convert pytz zones to zoneinfo themselves.
    """
    if value is None or isinstance(value, tzinfo):
        return value
    return _converters.to_timezone(value)


def to_datetime(
    value: datetime | date | str | None, tz: tzinfo | str | None, arg_name: str | None
) -> datetime | None:
    """An aware datetime from a datetime, a date or a date string (``"2022-8-1 5:16:12"`` too).

    Naive values are placed in ``tz`` (a tzinfo, pytz included, or a zone name). ``None`` and
    ``""`` give ``None``. Errors are :class:`~asyncz.exceptions.AsynczException` with Asyncz's
    messages; the exception they come from names the value and what is accepted.
    """
    if value is None or (isinstance(value, str) and not value):
        return None
    field = arg_name or "value"
    if isinstance(tz, str):  # a bad zone name is its own error, not a bad date
        tz = _converters.to_timezone(tz, "tz")
    try:
        return _converters.to_datetime(value, tz, field)
    except TypeError as exc:
        raise ConversionTypeError(
            f"Unsupported type for {arg_name}: {type(value).__name__}."
        ) from exc
    except ValueError as exc:
        message = "Invalid date string."
        if tz is None:
            try:
                _converters.to_datetime(value, timezone.utc, field)
                message = (
                    f'The "tz" argument must be specified if {arg_name} has no timezone information'
                )
            except ValueError:
                pass
        raise ConversionError(message) from exc


def make_function(fn: Callable[..., T]) -> Callable[..., T]:
    """Wrap a callable without a signature (``generator.send``) in a plain function.

    A generator reaching its end (``StopIteration``) counts as a normal return. The wrapper
    is a closure, so tasks made from it live in the memory store only.
    """

    @functools.wraps(fn, assigned=("__doc__",))
    def call(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except StopIteration as finished:
            # A generator that ran to its end (its cleanup done) finished normally.
            return finished.value  # type: ignore[no-any-return]

    call.__qualname__ = call.__name__ = f"make_function({callable_name(fn)})"
    return call


def make_async_function(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T | None]]:
    """Wrap a coroutine-returning callable (``agen.asend``) in an ``async def`` function.

    The wrapper is a closure, so tasks made from it live in the memory store only.
    """

    async def call(*args: Any, **kwargs: Any) -> T | None:
        try:
            return await fn(*args, **kwargs)
        except StopAsyncIteration:
            return None  # the async generator ran to its end: a normal finish

    call.__qualname__ = call.__name__ = f"make_async_function({callable_name(fn)})"
    return call


def datetime_to_utc_timestamp(value: datetime | None) -> float | None:
    """Seconds since the Unix epoch of an aware datetime (``None`` stays ``None``)."""
    return value.timestamp() if value is not None else None


def utc_timestamp_to_datetime(value: float | None) -> datetime | None:
    """The aware UTC datetime of a Unix timestamp (``None`` stays ``None``)."""
    return datetime.fromtimestamp(value, timezone.utc) if value is not None else None


def timedelta_seconds(delta: timedelta) -> float:
    """A timedelta in seconds."""
    return delta.total_seconds()


def datetime_ceil(value: datetime) -> datetime:
    """Round up to the next whole second (unchanged if already whole)."""
    if value.microsecond:
        return value + timedelta(seconds=1, microseconds=-value.microsecond)
    return value


def datetime_repr(value: datetime | None) -> str:
    """``2026-03-29 03:00:00 CEST``, or ``"None"``."""
    return value.strftime("%Y-%m-%d %H:%M:%S %Z") if value is not None else "None"


def normalize(value: datetime) -> datetime:
    """The same instant with the UTC offset its zone has then (after datetime arithmetic)."""
    return value.astimezone(timezone.utc).astimezone(value.tzinfo)


def to_int(value: Any) -> int | None:
    """``int(value)``, keeping ``None``."""
    return int(value) if value is not None else None


def to_float(value: Any) -> float | None:
    """``float(value)``, keeping ``None``."""
    return float(value) if value is not None else None


class _UtilsModule(types.ModuleType):
    """This module's type: replacing ``get_localzone`` here reaches the kernel's local zone."""

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "get_localzone":
            _converters.set_local_zone_source(value)

    def __delattr__(self, name: str) -> None:
        super().__delattr__(name)
        if name == "get_localzone":
            _converters.set_local_zone_source(None)


sys.modules[__name__].__class__ = _UtilsModule
