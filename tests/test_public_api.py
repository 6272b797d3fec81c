"""Asyncz's documented import paths, and what ``import asyncz`` costs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
