"""Persistent stores under a real ``AsyncIOScheduler``: refusals at add_task, restarts that keep
tasks (paused ones paused), and quarantine reaching the scheduler's listeners."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncz.core.errors import SerializationError
from asyncz.events import TASK_QUARANTINED
from asyncz.schedulers import AsyncIOScheduler
from asyncz.tasks import Task
from asyncz.triggers import DateTrigger
from tests.plugins.stores import jobs
from tests.plugins.stores.backends import Backend, make_backend

UTC = timezone.utc


@pytest.fixture(params=["file", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with make_backend(request.param, tmp_path) as b:
        yield b


def scheduler_on(backend: Backend, **options: Any) -> AsyncIOScheduler:
    return AsyncIOScheduler(stores={"default": backend.config()}, timezone="UTC", **options)


def test_unstorable_callables_are_refused_at_add_task(backend: Backend) -> None:
    async def main() -> None:
        scheduler = scheduler_on(backend)
        scheduler.start()
        try:
            with pytest.raises(SerializationError, match="module-level function"):
                scheduler.add_task(lambda: None, "interval", seconds=5)
            assert scheduler.get_tasks() == []
        finally:
            scheduler.shutdown()

    asyncio.run(main())


def test_a_restarted_scheduler_keeps_tasks_and_paused_state(backend: Backend) -> None:
    async def main() -> None:
        scheduler = scheduler_on(backend)
        scheduler.start()
        scheduler.add_task(jobs.job, "interval", minutes=5, id="running")
        scheduler.add_task(jobs.job, "interval", minutes=5, id="paused")
        scheduler.pause_task("paused")
        before = scheduler.get_task("running").next_run_time
        scheduler.shutdown()
        again = scheduler_on(backend)
        again.start()
        try:
            tasks = {t.id: t for t in again.get_tasks()}
            assert set(tasks) == {"running", "paused"}
            assert tasks["paused"].next_run_time is None
            assert tasks["running"].next_run_time == before
        finally:
            again.shutdown()

    asyncio.run(main())


def test_quarantine_reaches_listeners_and_other_tasks_keep_running(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async def main() -> None:
        runs = tmp_path / "runs.log"
        # Stored by another program beforehand, due at once.
        store = backend.make()
        store.start(None, "default")
        now = datetime.now(UTC)
        for task_id, fn, args in [
            ("moved", jobs.movable, ()),
            ("ok", jobs.record_run, (str(runs), "ok")),
        ]:
            store.add_task(
                Task(id=task_id, fn=fn, args=args, trigger=DateTrigger(now), next_run_time=now)
            )
        store.shutdown()
        monkeypatch.delattr(jobs, "movable")
        seen: list[Any] = []
        again = scheduler_on(backend)
        again.add_listener(seen.append, TASK_QUARANTINED)
        again.start()
        try:
            for _ in range(100):
                if runs.exists() and seen:
                    break
                await asyncio.sleep(0.05)
            assert runs.read_text().split()[0] == "ok"
            assert [(e.task_id, e.store) for e in seen] == [("moved", "default")]
            assert "movable" in seen[0].reason
            assert list(again.lookup_store("default").get_quarantined()) == ["moved"]
        finally:
            again.shutdown()

    asyncio.run(main())
