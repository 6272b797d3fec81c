"""The engine: schedulers that take due tasks from stores and hand them to executors.

``BaseScheduler`` holds configuration, the task API and the store pass; ``AsyncIOScheduler``
drives it from an asyncio event loop (the caller's, or its own in a thread) and
``NativeAsyncIOScheduler`` is the same with awaitable ``start()``/``shutdown()``. The loop never
polls: it sleeps until the earliest next run time over all stores and is woken early by any
local change that could make that earlier.

Due tasks are only ever taken through the store's lease path (``acquire_due_tasks`` then
``release_tasks``), the same for every store, so that stores shared between schedulers can
guarantee a run is handed to one of them only.

This module only gathers the scheduler's public names; the code lives, by responsibility, in:

* :mod:`asyncz.core.scheduler_common` — constants, ``SchedulerState``, ``undefined``,
  ``SchedulerInfo``, and the declarations the parts share;
* :mod:`asyncz.core.scheduler_config` — options, plugins, stores and executors, listeners;
* :mod:`asyncz.core.task_api` — adding, changing, running and inspecting tasks;
* :mod:`asyncz.core.engine` — state, start, the shutdown steps and the due-task pass;
* :mod:`asyncz.core.base_scheduler` — ``BaseScheduler``, composed of the three parts above;
* :mod:`asyncz.core.asyncio_scheduler` — the event loop: ``AsyncIOScheduler``,
  ``NativeAsyncIOScheduler``.

The constants are re-exported for reading; each is used from the module that needs it, so
changing one here changes nothing (patch it in that module instead).
"""

from __future__ import annotations

from asyncz.core.asyncio_scheduler import AsyncIOScheduler, NativeAsyncIOScheduler
from asyncz.core.base_scheduler import BaseScheduler
from asyncz.core.scheduler_common import ACQUIRE_BATCH as ACQUIRE_BATCH
from asyncz.core.scheduler_common import LEASE_SECONDS as LEASE_SECONDS
from asyncz.core.scheduler_common import MAX_IO_LEAD_SECONDS as MAX_IO_LEAD_SECONDS
from asyncz.core.scheduler_common import MAX_SLEEP_SECONDS as MAX_SLEEP_SECONDS
from asyncz.core.scheduler_common import SHUTDOWN_TRIGGER_ALIAS as SHUTDOWN_TRIGGER_ALIAS
from asyncz.core.scheduler_common import SPIN_SECONDS as SPIN_SECONDS
from asyncz.core.scheduler_common import UTC as UTC
from asyncz.core.scheduler_common import (
    SchedulerInfo,
    SchedulerInstanceInfo,
    SchedulerState,
    undefined,
)

__all__ = [
    "AsyncIOScheduler",
    "BaseScheduler",
    "NativeAsyncIOScheduler",
    "SchedulerInfo",
    "SchedulerInstanceInfo",
    "SchedulerState",
    "undefined",
]
