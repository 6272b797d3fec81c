"""Stores shared through a server wake the other schedulers up when a task is added or
updated (Redis pub/sub, PostgreSQL LISTEN/NOTIFY), instead of leaving it to their next poll."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncz.core.plugins import default_registry
from asyncz.tasks import Task
from asyncz.triggers import IntervalTrigger
from tests.plugins.stores import jobs
from tests.plugins.stores.backends import Backend, make_backend

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class WakeRecorder:
    def __init__(self) -> None:
        self.plugins = default_registry()
        self.identity = "notifications"
        self.timezone = UTC
        self.wakeups: list[datetime | None] = []
        self.woken = threading.Event()

    def wakeup(self, when: datetime | None = None) -> None:
        self.wakeups.append(when)
        self.woken.set()

    def dispatch_event(self, event: Any) -> None:
        return None


@pytest.fixture(params=["redis", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with make_backend(request.param, tmp_path) as b:
        yield b


def make(task_id: str, offset: float | None) -> Task:
    return Task(
        id=task_id,
        fn=jobs.job,
        trigger=IntervalTrigger(seconds=60, start_at=T0, timezone="UTC"),
        next_run_time=None if offset is None else T0 + timedelta(seconds=offset),
    )


def test_other_instances_are_woken_up_not_the_writer(backend: Backend) -> None:
    writer_scheduler, other_scheduler = WakeRecorder(), WakeRecorder()
    writer, other = backend.make(), backend.make()
    writer.start(writer_scheduler, "default")
    other.start(other_scheduler, "default")
    try:
        time.sleep(0.3)  # let the listener subscribe
        writer.add_tasks([make("a", 5), make("b", 2)])
        assert other_scheduler.woken.wait(5), "the other scheduler was not woken up"
        assert other_scheduler.wakeups[0] == T0 + timedelta(seconds=2)
        other_scheduler.woken.clear()
        writer.update_task(make("a", 1))
        assert other_scheduler.woken.wait(5)
        assert other_scheduler.wakeups[-1] == T0 + timedelta(seconds=1)
        time.sleep(0.2)
        assert writer_scheduler.wakeups == []  # it knows about its own changes
    finally:
        writer.shutdown()
        other.shutdown()


def test_notifications_can_be_turned_off(backend: Backend) -> None:
    writer_scheduler, other_scheduler = WakeRecorder(), WakeRecorder()
    writer, other = backend.make(notify=False), backend.make(notify=False)
    writer.start(writer_scheduler, "default")
    other.start(other_scheduler, "default")
    try:
        writer.add_task(make("a", 5))
        assert not other_scheduler.woken.wait(0.5)
    finally:
        writer.shutdown()
        other.shutdown()


def test_a_storm_of_notifications_wakes_the_scheduler_a_few_times_not_once_each() -> None:
    """Another process adding 500 tasks one by one sends 500 notifications: the scheduler is
    woken at once for the first, then at most once per coalescing window, and the earliest
    moment held back is passed on when the window closes (nothing is lost)."""
    from asyncz.plugins.stores.persistent import NOTIFY_COALESCE_SECONDS, PersistentStore

    store = PersistentStore()
    recorder = WakeRecorder()
    store.scheduler = recorder
    base = int(T0.timestamp() * 1_000_000)
    store.notified(f"other-token {base + 10_000_000}")  # the first: passed on at once
    for step in range(499):
        # later moments than the first, then one earlier than everything in the middle
        offset = 5_000_000 if step == 250 else 20_000_000 + step
        store.notified(f"other-token {base + offset}")
    assert len(recorder.wakeups) == 2  # the first, and the earlier moment at step 250 at once
    assert recorder.wakeups[-1] == T0 + timedelta(seconds=5)
    deadline = time.monotonic() + 5
    while len(recorder.wakeups) < 3 and time.monotonic() < deadline:
        time.sleep(NOTIFY_COALESCE_SECONDS / 5)
    # The held-back messages come out as one wake-up for the earliest of them.
    assert recorder.wakeups[2] == T0 + timedelta(seconds=20)
    time.sleep(NOTIFY_COALESCE_SECONDS * 3)
    assert len(recorder.wakeups) == 3
    store.notified(f"{store._token} {base}")  # its own messages never wake it
    assert len(recorder.wakeups) == 3
