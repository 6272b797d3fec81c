"""Shared fixtures: fake clocks are explicit ``now`` arguments; real time only in short runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

UTC = timezone.utc


@pytest.fixture
def utc_now() -> datetime:
    return datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class EventRecorder:
    """Collects scheduler events and lets a test await a condition on them, with a deadline."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()

    def __call__(self, event: Any) -> None:
        self.events.append(event)
        # Listeners may be called from worker threads.
        self._loop.call_soon_threadsafe(self._changed.set)

    def codes(self, code: int) -> list[Any]:
        return [e for e in self.events if e.code == code]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 2.0) -> None:
        async def wait() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)


@pytest.fixture
def recorder_factory() -> Callable[[], EventRecorder]:
    return EventRecorder
