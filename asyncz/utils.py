"""Helpers users call: wrapping signature-less callables, time zones, callable references."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asyncz.core.converters import (
    callable_name,
    get_localzone,
    maybe_ref,
    obj_to_ref,
    ref_to_obj,
    to_datetime,
    to_timezone,
)

__all__ = [
    "get_callable_name",
    "get_localzone",
    "make_async_function",
    "make_function",
    "maybe_ref",
    "obj_to_ref",
    "ref_to_obj",
    "to_datetime",
    "to_timezone",
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
