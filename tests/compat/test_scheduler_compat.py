"""Asyncz's scheduler surface on asyncz's engine: a BaseScheduler subclass with its own loop,
``loggers_class``, task defaults given as objects, the public attribute names, the plugin
defaults, Asyncz's info snapshots, and freezing the clock through ``asyncz.schedulers.base``."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from unittest import mock

import pytest

import asyncz.schedulers.base as schedulers_base
from asyncz.core.converters import now as scheduler_now
from asyncz.enums import SchedulerState, TaskScheduleState
from asyncz.events.constants import ALL_EVENTS, TASK_EXECUTED, TASK_MODIFIED, TASK_SUBMITTED
from asyncz.exceptions import SchedulerNotRunningError
from asyncz.executors.base import run_task
from asyncz.executors.debug import DebugExecutor
from asyncz.schedulers import AsyncIOScheduler, defaults
from asyncz.schedulers.base import BaseScheduler, ClassicLogging
from asyncz.stores.memory import MemoryStore
from asyncz.tasks import Task
from asyncz.triggers.base import BaseTrigger

UTC = timezone.utc


def work(x: int = 0) -> int:
    return x + 1


class LoopLessScheduler(BaseScheduler):
    """A scheduler whose "loop" is the test calling process_tasks(), as a custom one would."""

    def __init__(self, **options: Any) -> None:
        self.wakeups = 0
        super().__init__(**options)

    def wakeup(self, when: datetime | None = None) -> None:
        self.wakeups += 1


class EveryMinuteFromNow(BaseTrigger):
    """A trigger written the Asyncz way: no alias, no state methods."""

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        base = previous_time or now or datetime.now(UTC)
        return base + timedelta(minutes=1)


def test_a_base_scheduler_subclass_starts_processes_and_stops_without_a_loop() -> None:
    scheduler = LoopLessScheduler(executors={"default": DebugExecutor()}, timezone="UTC")
    seen: list[Any] = []
    scheduler.add_listener(seen.append, TASK_SUBMITTED | TASK_EXECUTED)
    scheduler.add_task(work, "date", args=[1], id="once")
    assert scheduler.start() is True and scheduler.start() is False  # nested: only counted
    assert scheduler.state is SchedulerState.STATE_RUNNING and scheduler.wakeups >= 1
    assert scheduler.process_tasks() is None  # ran the one task; nothing else scheduled
    assert [e.code for e in seen] == [TASK_SUBMITTED, TASK_EXECUTED]
    assert seen[1].return_value == 2
    assert scheduler.get_task("once") is None
    assert scheduler.shutdown() is False and scheduler.shutdown() is True
    with pytest.raises(SchedulerNotRunningError):
        scheduler.shutdown()


def test_a_base_scheduler_defaults_to_a_thread_pool_and_the_memory_store() -> None:
    scheduler = LoopLessScheduler()
    assert type(scheduler.create_default_executor()).__name__ == "ThreadPoolExecutor"
    assert isinstance(scheduler.create_default_store(), MemoryStore)
    assert AsyncIOScheduler().create_default_executor().alias is None  # not started yet


@pytest.mark.parametrize("spec", [ClassicLogging, "asyncz.schedulers.base:ClassicLogging"])
def test_loggers_class_makes_the_loggers(spec: Any) -> None:
    scheduler = LoopLessScheduler(loggers_class=spec, logger_name="worker-a")
    assert isinstance(scheduler.loggers, ClassicLogging)
    assert scheduler.logger_name == "asyncz.schedulers.worker-a"
    assert scheduler.logger is logging.getLogger("asyncz.schedulers.worker-a")
    with pytest.raises(TypeError, match="loggers_class"):
        LoopLessScheduler(loggers_class=42)


@dataclasses.dataclass
class Defaults:
    mistrigger_grace_time: float = 7
    coalesce: bool = False
    max_instances: int = 3


def test_task_defaults_given_as_a_model_are_read_by_the_shape() -> None:
    scheduler = LoopLessScheduler(shape="dataclass", task_defaults=Defaults())
    assert scheduler.task_defaults.model_dump() == {
        "mistrigger_grace_time": 7,
        "coalesce": False,
        "max_instances": 3,
    }
    assert scheduler.task_defaults.max_instances == 3
    task = scheduler.add_task(work, "interval", seconds=5)
    assert (task.mistrigger_grace_time, task.coalesce, task.max_instances) == (7, False, 3)
    # Asyncz's default Shape needs no pydantic for plain dicts; timeout shows once it is set.
    plain = LoopLessScheduler(task_defaults={"max_instances": "4", "timeout": 2})
    assert type(plain.shape).__name__ == "PydanticShape"
    assert plain.task_defaults.model_dump()["timeout"] == 2


def test_public_attribute_names_and_a_store_given_as_a_class() -> None:
    scheduler = LoopLessScheduler()
    scheduler.add_store(MemoryStore, "classy")  # as Asyncz's documentation writes it
    assert isinstance(scheduler.stores["classy"], MemoryStore)
    listener = mock.Mock()
    scheduler.listeners = [(listener, TASK_MODIFIED)]
    scheduler.add_task(work, "interval", seconds=5, id="t")
    scheduler.update_task("t", name="renamed")  # pending: still an event, as in Asyncz
    assert listener.call_args.args[0].code == TASK_MODIFIED
    assert scheduler.listeners == [(listener, TASK_MODIFIED)]
    with pytest.raises(ValueError, match="already has a task store by the alias of 'classy'"):
        scheduler.add_store(MemoryStore(), "classy")
    with pytest.raises(TypeError, match=r"Expected executor instance or dict for executors\["):
        LoopLessScheduler(executors={"default": 6})


def test_the_plugin_defaults_come_from_the_registry() -> None:
    assert defaults.triggers["cron"].endswith(":CronTrigger")
    assert defaults.stores["memory"] == "asyncz.plugins.stores.memory:MemoryStore"
    assert BaseScheduler.resolve_load_plugin(defaults.stores["memory"]) is MemoryStore


def test_a_trigger_without_an_alias_is_accepted() -> None:
    scheduler = LoopLessScheduler(timezone="UTC")
    trigger = EveryMinuteFromNow()
    assert scheduler.create_trigger(trigger, {}) is trigger
    with pytest.raises(TypeError, match="Expected a trigger instance or string, got 'int'"):
        scheduler.create_trigger(1, {})


def test_an_aware_start_at_gives_the_trigger_its_zone() -> None:
    tokyo = timezone(timedelta(hours=9))
    scheduler = LoopLessScheduler(timezone="UTC")
    trigger = scheduler.create_trigger(
        "cron", {"hour": 4, "start_at": datetime(2030, 1, 1, tzinfo=tokyo)}
    )
    assert trigger.timezone.utcoffset(None) == timedelta(hours=9)


def test_replacing_datetime_in_schedulers_base_sets_the_schedulers_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen = datetime(2022, 11, 3, 18, 40, tzinfo=UTC)
    clock = mock.Mock(datetime, now=lambda tz=None: frozen.astimezone(tz))
    monkeypatch.setattr("asyncz.schedulers.base.datetime", clock)
    assert scheduler_now() == frozen
    scheduler = LoopLessScheduler(identity="worker-a", executors={"default": DebugExecutor()})
    scheduler.start(paused=True)
    scheduler.add_task(work, "interval", seconds=30, id="paused-one")
    scheduler.pause_task("paused-one")
    info = scheduler.get_scheduler_info()
    assert info.started_at == frozen and info.uptime_seconds == 0
    assert (info.task_count, info.paused_task_count, info.submitted_task_count) == (1, 1, 1)
    (instance,) = scheduler.get_scheduler_instance_infos()
    assert instance.identity == "worker-a" and instance.last_seen_at == frozen
    assert scheduler.get_task_infos()[0].schedule_state is TaskScheduleState.PAUSED
    scheduler.shutdown()
    monkeypatch.undo()
    assert schedulers_base.datetime is datetime
    assert abs(scheduler_now() - datetime.now(UTC)) < timedelta(seconds=5)


def test_run_task_returns_the_events_of_the_runs() -> None:
    task = Task(work, id="direct", args=(2,))
    events = run_task(task, "default", [datetime.now(UTC)], "tests")
    assert [e.code for e in events if e.code == TASK_EXECUTED] == [TASK_EXECUTED]
    assert events[-1].return_value == 3
    assert all(e.code & ALL_EVENTS for e in events)
