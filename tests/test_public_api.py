"""Asyncz's documented import paths, and what ``import asyncz`` costs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import asyncz

ROOT = Path(__file__).resolve().parents[1]


def test_documented_import_paths() -> None:
    from asyncz.events import TASK_EXECUTED, TaskExecutionEvent
    from asyncz.exceptions import (
        AsynczException,
        ConflictIdError,
        MaximumInstancesError,
        SchedulerAlreadyRunningError,
        SchedulerNotRunningError,
        TaskLookupError,
        UnknownAliasError,
    )
    from asyncz.executors import AsyncIOExecutor, BaseExecutor
    from asyncz.locks import FileLockProtected, FileProtectedLock, NullLockProtected
    from asyncz.schedulers import AsyncIOScheduler
    from asyncz.stores import BaseStore, MemoryStore
    from asyncz.tasks import Task
    from asyncz.triggers import BaseTrigger, DateTrigger, IntervalTrigger
    from asyncz.utils import make_async_function, make_function, obj_to_ref, ref_to_obj

    assert FileProtectedLock is FileLockProtected
    assert asyncz.AsyncIOScheduler is AsyncIOScheduler is asyncz.Asyncz
    assert asyncz.Task is Task
    assert issubclass(UnknownAliasError, LookupError)
    assert issubclass(ConflictIdError, KeyError) and issubclass(TaskLookupError, KeyError)
    for exc in (MaximumInstancesError, SchedulerAlreadyRunningError, SchedulerNotRunningError):
        assert issubclass(exc, AsynczException)
    assert TASK_EXECUTED == 4096 and TaskExecutionEvent
    assert issubclass(MemoryStore, BaseStore) and issubclass(AsyncIOExecutor, BaseExecutor)
    assert issubclass(DateTrigger, BaseTrigger) and IntervalTrigger.alias == "interval"
    assert NullLockProtected and make_function and make_async_function
    assert ref_to_obj(obj_to_ref(test_documented_import_paths)) is test_documented_import_paths


def test_import_asyncz_imports_no_plugin_and_no_optional_dependency() -> None:
    code = "import sys, json; import asyncz; print(json.dumps(sorted(m for m in sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    modules = json.loads(result.stdout)
    assert not [m for m in modules if m.startswith("asyncz.plugins")]
    for optional in ("sqlalchemy", "redis", "psycopg", "pymysql", "yaml", "asyncio"):
        assert optional not in modules
    assert "asyncz.core.scheduler" not in modules


def test_py_typed_is_shipped() -> None:
    assert (Path(asyncz.__file__).parent / "py.typed").exists()


def test_asyncz_submodule_paths_and_helpers() -> None:
    from datetime import datetime, timedelta, timezone

    from asyncz.enums import SchedulerState, TaskScheduleState
    from asyncz.schedulers.asyncio import AsyncIOScheduler, NativeAsyncIOScheduler
    from asyncz.schedulers.base import BaseScheduler
    from asyncz.stores.base import BaseStore
    from asyncz.stores.file import FileStore
    from asyncz.stores.memory import MemoryStore
    from asyncz.stores.sqlalchemy import SQLAlchemyStore
    from asyncz.utils import (
        check_callable_args,
        datetime_ceil,
        datetime_repr,
        datetime_to_utc_timestamp,
        normalize,
        timedelta_seconds,
        to_float,
        to_int,
        utc_timestamp_to_datetime,
    )

    assert issubclass(AsyncIOScheduler, BaseScheduler)
    assert issubclass(NativeAsyncIOScheduler, AsyncIOScheduler)
    assert issubclass(MemoryStore, BaseStore) and issubclass(FileStore, BaseStore)
    assert SQLAlchemyStore.__name__ == "SQLAlchemyStore"
    assert SchedulerState.RUNNING == 1 and TaskScheduleState.PAUSED == "paused"
    moment = datetime(2026, 1, 1, 12, 0, 0, 1, tzinfo=timezone.utc)
    assert datetime_ceil(moment) == datetime(2026, 1, 1, 12, 0, 1, tzinfo=timezone.utc)
    assert datetime_repr(moment) == "2026-01-01 12:00:00 UTC" and datetime_repr(None) == "None"
    stamp = datetime_to_utc_timestamp(moment)
    assert stamp is not None and utc_timestamp_to_datetime(stamp) == moment
    assert timedelta_seconds(timedelta(minutes=2)) == 120.0
    assert (to_int("3"), to_float("1.5"), to_int(None)) == (3, 1.5, None)
    assert normalize(moment).utcoffset() == timedelta(0)
    check_callable_args(divmod, (1, 2), {})
    with pytest.raises(ValueError, match="positional arguments is longer") as info:
        check_callable_args(test_asyncz_submodule_paths_and_helpers, (1,), {})
    assert "do not fit" in str(info.value.__cause__)


def test_the_deprecated_fn_keyword_of_add_task() -> None:
    from asyncz.schedulers import AsyncIOScheduler

    scheduler = AsyncIOScheduler()
    with pytest.warns(DeprecationWarning, match="fn="):
        task = scheduler.add_task(fn=print, trigger="interval", seconds=5)
    assert task.fn is print
    with pytest.raises(TypeError, match="twice"):
        scheduler.add_task(print, fn=print)
