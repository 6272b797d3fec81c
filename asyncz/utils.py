"""Helpers users call: wrapping signature-less callables, time zones, callable references."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from asyncz.core.converters import (
    callable_name,
    check_callable_args,
    get_localzone,
    localize,
    maybe_ref,
    obj_to_ref,
    ref_to_obj,
    to_datetime,
    to_timezone,
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
