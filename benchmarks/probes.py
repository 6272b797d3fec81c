"""Measuring instruments the workloads share: memory, event-loop wake-ups, store round trips.

Standard library only: these run inside every benchmark environment.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any


def rss_bytes() -> int:
    """Current resident set size. /proc is exact and cheap; ru_maxrss (a peak) is the fallback."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss_bytes()


def settled_rss_bytes() -> int:
    # Collect first so a measurement does not depend on when the cyclic GC last ran.
    gc.collect()
    return rss_bytes()


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak if sys.platform == "darwin" else peak * 1024


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (no interpolation: a real sample)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


class LoopWakeups:
    """Counts event-loop iterations and selector wake-ups of one loop.

    asyncio's loop runs `_run_once` once per iteration, and each iteration blocks in the
    selector's `select(timeout)` until a timer is due or a file descriptor (including the
    self-pipe that `call_soon_threadsafe` writes to) becomes ready. So the number of `select`
    calls is the number of times the process was woken up on behalf of the loop, and
    `select` returning with ready descriptors tells I/O and cross-thread wake-ups apart from
    timers. Both hooks are private CPython details; the harness wraps them on its own loop only,
    and reports n/a where they do not exist.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.iterations = 0
        self.selects = 0
        self.selects_with_events = 0
        self.supported = hasattr(loop, "_run_once") and hasattr(loop, "_selector")
        if not self.supported:
            return
        run_once = loop._run_once  # type: ignore[attr-defined]
        selector = loop._selector  # type: ignore[attr-defined]
        select = selector.select

        def counting_run_once() -> None:
            self.iterations += 1
            run_once()

        def counting_select(timeout: float | None = None) -> Any:
            events = select(timeout)
            self.selects += 1
            if events:
                self.selects_with_events += 1
            return events

        loop._run_once = counting_run_once  # type: ignore[attr-defined]
        selector.select = counting_select

    def snapshot(self) -> tuple[int, int, int]:
        return self.iterations, self.selects, self.selects_with_events


class StoreProbe:
    """Counts round trips to a store's server and remembers when the last one ended.

    For SQL the probe listens to the Engine the workload created and handed to the store, so every
    statement is seen whatever the library does above it. For Redis it wraps redis-py's client
    classes (a pipeline counts as one round trip), sync and asyncio.
    """

    def __init__(self) -> None:
        self.count = 0
        self.last_end = 0.0
        self._undo: list[Callable[[], None]] = []

    def _hit(self) -> None:
        self.count += 1
        self.last_end = time.perf_counter()

    def attach_engine(self, engine: Any) -> None:
        from sqlalchemy import event

        def after(*_: Any) -> None:
            self._hit()

        event.listen(engine, "after_cursor_execute", after)
        self._undo.append(lambda: event.remove(engine, "after_cursor_execute", after))

    def attach_redis(self) -> None:
        import redis.client

        self._wrap(redis.client.Redis, "execute_command", is_async=False)
        self._wrap(redis.client.Pipeline, "execute", is_async=False)
        try:
            import redis.asyncio.client as aclient
        except ImportError:
            return
        self._wrap(aclient.Redis, "execute_command", is_async=True)
        self._wrap(aclient.Pipeline, "execute", is_async=True)

    def _wrap(self, cls: type, name: str, *, is_async: bool) -> None:
        original = cls.__dict__.get(name)
        if original is None:
            return
        probe = self

        if is_async:

            async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                try:
                    return await original(self, *args, **kwargs)
                finally:
                    probe._hit()

        else:

            def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
                try:
                    return original(self, *args, **kwargs)
                finally:
                    probe._hit()

        setattr(cls, name, wrapper)
        self._undo.append(lambda: setattr(cls, name, original))

    def detach(self) -> None:
        while self._undo:
            self._undo.pop()()

    async def wait_quiet(self, quiet: float = 0.2, limit: float = 30.0) -> None:
        """Return once no round trip happened for `quiet` seconds (work may run in threads)."""
        deadline = time.perf_counter() + limit
        seen, since = self.count, time.perf_counter()
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
            if self.count != seen:
                seen, since = self.count, time.perf_counter()
            elif time.perf_counter() - since >= quiet:
                return


async def drain_loop(turns: int = 3) -> None:
    """Let callbacks that were queued with call_soon (e.g. one wake-up per add) run."""
    for _ in range(turns):
        await asyncio.sleep(0)
