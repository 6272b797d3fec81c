"""Thin adapters that let one workload drive every library under test.

There are two scheduler API families: APScheduler 3 (`add_job`, `job_defaults`, `jobstores`) and
Asyncz (`add_task`, `task_defaults`, `stores`), the latter shared by the PyPI asyncz 0.17 and this
checkout. croniter is not a scheduler; it only takes part in the cron workload.

What does not live here: timing, counting and probing (see `probes` and `workloads`). An adapter
only translates; every library import happens inside a method so that this module imports with
the standard library alone in any of the benchmark environments.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, ClassVar

#: Worker processes of every library's process pool in the dispatch workload: the machine's two
#: cores, so that no library is measured with more parallelism than another.
PROCESS_WORKERS = 2


class NotSupported(Exception):
    """The library lacks a feature a workload needs; reported as "n/a", never as a failure."""


@dataclass(frozen=True)
class CronSpec:
    """A cron schedule written once for every dialect.

    `crontab` is the five-field crontab(5) expression. `fields` is the keyword form for libraries
    whose crontab parser cannot say it (APScheduler-style `day="last"`); when set, adapters of the
    APScheduler/Asyncz family use it instead of `from_crontab`, croniter keeps the crontab text.
    """

    name: str
    crontab: str
    timezone: str = "UTC"
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreSpec:
    """Where tasks live: `kind` is memory, sqlalchemy or redis; names are unique per process."""

    kind: str
    engine: Any = None  # a SQLAlchemy Engine the workload owns (so it can count statements)
    table: str = ""
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_db: int = 0
    key_prefix: str = ""


class Adapter:
    """The operations a workload needs; subclasses map them onto one library's API."""

    lib: ClassVar[str]
    label: ClassVar[str]
    distribution: ClassVar[str]
    is_scheduler: ClassVar[bool] = True

    def version(self) -> str:
        return importlib.metadata.version(self.distribution)

    def origin(self) -> str:
        """Where the library is imported from, so a report can prove which code it measured."""
        spec = importlib.util.find_spec(self.module_name())
        return str(Path(spec.origin).parent) if spec and spec.origin else "?"

    def module_name(self) -> str:
        return self.distribution.lower()

    # --- scheduler lifecycle -------------------------------------------------------------------
    def make_scheduler(self, *, store: StoreSpec | None = None, executor: str = "asyncio") -> Any:
        raise NotSupported(f"{self.label} is not a scheduler")

    def start(self, scheduler: Any, *, paused: bool = False) -> None:
        """Start; `paused` starts the stores (bound, connected) but runs nothing."""
        scheduler.start(paused=paused)

    def shutdown(self, scheduler: Any) -> None:
        scheduler.shutdown(wait=False)

    def wakeup(self, scheduler: Any) -> None:
        """Ask for one pass over the stores, as an add or a timer would."""
        scheduler.wakeup()

    # --- tasks -----------------------------------------------------------------------------------
    def add_interval(self, scheduler: Any, fn: Callable[..., Any], seconds: float) -> None:
        raise NotImplementedError

    def add_date(
        self, scheduler: Any, fn: Callable[..., Any], run_at: datetime, args: tuple[Any, ...] = ()
    ) -> None:
        raise NotImplementedError

    def add_cron(self, scheduler: Any, fn: Callable[..., Any], spec: CronSpec) -> None:
        raise NotImplementedError

    def count_tasks(self, scheduler: Any) -> int:
        raise NotImplementedError

    def on_executed(self, scheduler: Any, callback: Callable[[], None]) -> None:
        """Call `callback()` (from any thread) after each successful run."""
        raise NotImplementedError

    def load_due(self, scheduler: Any, now: datetime) -> int:
        """Load every task due at `now` from the default store (its public due-task query, as
        the scheduler would call it); returns how many."""
        raise NotImplementedError

    # --- cron ------------------------------------------------------------------------------------
    def cron_fires(self, spec: CronSpec, start: datetime, count: int) -> Iterator[datetime]:
        """Successive fire times strictly after `start`, each computed from the previous one."""
        raise NotImplementedError


def _zone(name: str) -> tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


class APScheduler3Adapter(Adapter):
    lib = "apscheduler"
    label = "APScheduler"
    distribution = "APScheduler"

    def make_scheduler(self, *, store: StoreSpec | None = None, executor: str = "asyncio") -> Any:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        return AsyncIOScheduler(
            jobstores={"default": self._store(store or StoreSpec("memory"))},
            executors={"default": self._executor(executor)},
            # Grace None: a benchmark that floods the scheduler must not lose runs to the 1 s
            # default, or "executions per second" would count only the lucky ones.
            job_defaults={"misfire_grace_time": None, "coalesce": False, "max_instances": 1},
            timezone=_zone("UTC"),
        )

    @staticmethod
    def _executor(kind: str) -> Any:
        if kind == "asyncio":
            from apscheduler.executors.asyncio import AsyncIOExecutor

            return AsyncIOExecutor()
        if kind == "threadpool":
            from apscheduler.executors.pool import ThreadPoolExecutor

            return ThreadPoolExecutor(max_workers=10)
        if kind == "processpool":
            from apscheduler.executors.pool import ProcessPoolExecutor

            return ProcessPoolExecutor(max_workers=PROCESS_WORKERS)
        if kind == "debug":
            from apscheduler.executors.debug import DebugExecutor

            return DebugExecutor()
        raise NotSupported(f"executor {kind!r}")

    @staticmethod
    def _store(spec: StoreSpec) -> Any:
        if spec.kind == "memory":
            from apscheduler.jobstores.memory import MemoryJobStore

            return MemoryJobStore()
        if spec.kind == "sqlalchemy":
            from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

            return SQLAlchemyJobStore(engine=spec.engine, tablename=spec.table)
        if spec.kind == "redis":
            from apscheduler.jobstores.redis import RedisJobStore

            return RedisJobStore(
                db=spec.redis_db,
                jobs_key=f"{spec.key_prefix}jobs",
                run_times_key=f"{spec.key_prefix}run_times",
                host=spec.redis_host,
                port=spec.redis_port,
            )
        raise NotSupported(f"store {spec.kind!r}")

    def add_interval(self, scheduler: Any, fn: Callable[..., Any], seconds: float) -> None:
        scheduler.add_job(fn, "interval", seconds=seconds)

    def add_date(
        self, scheduler: Any, fn: Callable[..., Any], run_at: datetime, args: tuple[Any, ...] = ()
    ) -> None:
        scheduler.add_job(fn, "date", run_date=run_at, args=args)

    def add_cron(self, scheduler: Any, fn: Callable[..., Any], spec: CronSpec) -> None:
        scheduler.add_job(fn, self._cron_trigger(spec))

    @staticmethod
    def _cron_trigger(spec: CronSpec) -> Any:
        from apscheduler.triggers.cron import CronTrigger

        if spec.fields:
            return CronTrigger(**spec.fields, timezone=_zone(spec.timezone))
        return CronTrigger.from_crontab(spec.crontab, timezone=_zone(spec.timezone))

    def count_tasks(self, scheduler: Any) -> int:
        return len(scheduler.get_jobs())

    def on_executed(self, scheduler: Any, callback: Callable[[], None]) -> None:
        from apscheduler.events import EVENT_JOB_EXECUTED

        scheduler.add_listener(lambda event: callback(), EVENT_JOB_EXECUTED)

    def load_due(self, scheduler: Any, now: datetime) -> int:
        return len(scheduler._lookup_jobstore("default").get_due_jobs(now))

    def cron_fires(self, spec: CronSpec, start: datetime, count: int) -> Iterator[datetime]:
        trigger = self._cron_trigger(spec)
        # As if it had last fired at `start`: the scheduler's own call, and strictly after it.
        previous = now = start
        for _ in range(count):
            fire = trigger.get_next_fire_time(previous, now)
            if fire is None:
                return
            yield fire
            previous = now = fire


class AsynczAdapter(Adapter):
    """The Asyncz API; the same code drives the PyPI release and this checkout."""

    lib = "asyncz-peer"
    label = "asyncz 0.17"
    distribution = "asyncz"

    def make_scheduler(self, *, store: StoreSpec | None = None, executor: str = "asyncio") -> Any:
        from asyncz.schedulers import AsyncIOScheduler

        return AsyncIOScheduler(
            stores={"default": self._store(store or StoreSpec("memory"))},
            executors={"default": self._executor(executor)},
            task_defaults={"mistrigger_grace_time": None, "coalesce": False, "max_instances": 1},
            timezone=_zone("UTC"),
        )

    @staticmethod
    def _executor(kind: str) -> dict[str, Any]:
        # Plugin-alias dicts rather than classes: that is the configuration users write, and in
        # this checkout an unknown alias fails with a LookupError, which the harness reports n/a.
        if kind == "asyncio":
            return {"type": "asyncio"}
        if kind == "threadpool":
            return {"type": "threadpool", "max_workers": 10}
        if kind == "processpool":
            return {"type": "processpool", "max_workers": PROCESS_WORKERS}
        if kind == "debug":
            return {"type": "debug"}
        raise NotSupported(f"executor {kind!r}")

    @staticmethod
    def _store(spec: StoreSpec) -> dict[str, Any]:
        if spec.kind == "memory":
            return {"type": "memory"}
        if spec.kind == "sqlalchemy":
            return {"type": "sqlalchemy", "database": spec.engine, "tablename": spec.table}
        if spec.kind == "redis":
            return {
                "type": "redis",
                "database": spec.redis_db,
                "tasks_key": f"{spec.key_prefix}tasks",
                "run_times_key": f"{spec.key_prefix}run_times",
                "host": spec.redis_host,
                "port": spec.redis_port,
            }
        raise NotSupported(f"store {spec.kind!r}")

    # asyncz 0.17 drops a None `mistrigger_grace_time` from `task_defaults` (it dumps the defaults
    # with exclude_none) and falls back to 1 s, so the grace time is repeated on every add.
    def add_interval(self, scheduler: Any, fn: Callable[..., Any], seconds: float) -> None:
        scheduler.add_task(fn, trigger="interval", seconds=seconds, mistrigger_grace_time=None)

    def add_date(
        self, scheduler: Any, fn: Callable[..., Any], run_at: datetime, args: tuple[Any, ...] = ()
    ) -> None:
        scheduler.add_task(fn, "date", run_at=run_at, args=args, mistrigger_grace_time=None)

    def add_cron(self, scheduler: Any, fn: Callable[..., Any], spec: CronSpec) -> None:
        scheduler.add_task(fn, self._cron_trigger(spec), mistrigger_grace_time=None)

    @staticmethod
    def _cron_trigger(spec: CronSpec) -> Any:
        from asyncz.triggers import CronTrigger

        if spec.fields:
            return CronTrigger(**spec.fields, timezone=_zone(spec.timezone))
        return CronTrigger.from_crontab(spec.crontab, timezone=_zone(spec.timezone))

    def count_tasks(self, scheduler: Any) -> int:
        return len(scheduler.get_tasks())

    def on_executed(self, scheduler: Any, callback: Callable[[], None]) -> None:
        from asyncz.events import TASK_EXECUTED

        scheduler.add_listener(lambda event: callback(), TASK_EXECUTED)

    def load_due(self, scheduler: Any, now: datetime) -> int:
        return len(scheduler.lookup_store("default").get_due_tasks(now))

    def cron_fires(self, spec: CronSpec, start: datetime, count: int) -> Iterator[datetime]:
        trigger = self._cron_trigger(spec)
        zone = _zone(spec.timezone)
        previous = now = start
        for _ in range(count):
            fire = trigger.get_next_trigger_time(zone, previous, now)
            if fire is None:
                return
            yield fire
            previous = now = fire


class SelfAdapter(AsynczAdapter):
    lib = "asyncz"
    label = "asyncz (this checkout)"

    @staticmethod
    def _store(spec: StoreSpec) -> dict[str, Any]:
        config = AsynczAdapter._store(spec)
        if spec.kind == "redis":
            # Our Redis store keeps leases under `key_prefix` too, which Asyncz's tasks_key and
            # run_times_key do not move; without it runs would share the default lease keys.
            config["key_prefix"] = spec.key_prefix
        return config

    def version(self) -> str:
        import asyncz

        version = str(getattr(asyncz, "__version__", "?"))
        root = Path(asyncz.__file__).resolve().parent.parent
        # The commit, and whether the measured code differs from it: the tree may be mid-edit.
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            rev = _git(root, "rev-parse", "--short", "HEAD")
            if rev:
                dirty = _git(root, "status", "--porcelain", "--", "asyncz", "pyproject.toml")
                version += f" ({rev}{', uncommitted changes' if dirty else ''})"
        return version


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else ""


class CroniterAdapter(Adapter):
    lib = "croniter"
    label = "croniter"
    distribution = "croniter"
    is_scheduler = False

    def cron_fires(self, spec: CronSpec, start: datetime, count: int) -> Iterator[datetime]:
        from croniter import croniter

        # croniter computes in the zone of the datetime it is given.
        it = croniter(spec.crontab, start.astimezone(_zone(spec.timezone)))
        for _ in range(count):
            yield it.get_next(datetime)


ADAPTERS: dict[str, type[Adapter]] = {
    cls.lib: cls for cls in (SelfAdapter, AsynczAdapter, APScheduler3Adapter, CroniterAdapter)
}


def get_adapter(lib: str) -> Adapter:
    try:
        return ADAPTERS[lib]()
    except KeyError:
        raise SystemExit(f"unknown library {lib!r}; choose from {', '.join(ADAPTERS)}") from None


def loaded_from(module: str) -> str:
    """The directory a module was imported from, or "" when it is not imported."""
    mod = sys.modules.get(module)
    return str(Path(mod.__file__).parent) if mod and mod.__file__ else ""
