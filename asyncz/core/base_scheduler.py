"""``BaseScheduler``: the scheduler every other one extends, composed of its parts.

Here: the class itself, its options, ``__init__`` (the state all parts share) and the refusal
to be pickled. Its behaviour lives in the mixins it composes: configuration in
:mod:`asyncz.core.scheduler_config`, the task API in :mod:`asyncz.core.task_api`, the lifecycle
and the due-task pass in :mod:`asyncz.core.engine`. The asyncio schedulers that drive it are in
:mod:`asyncz.core.asyncio_scheduler`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

from asyncz.core.cluster import Heartbeat, RunRecorder
from asyncz.core.cluster_api import _ClusterAPIMixin
from asyncz.core.engine import _LifecycleMixin
from asyncz.core.locks import LockProtectedProtocol
from asyncz.core.protocols import Executor, Store
from asyncz.core.scheduler_common import SchedulerState, _PendingTask
from asyncz.core.scheduler_config import _ConfigurationMixin
from asyncz.core.task_api import _TaskAPIMixin

__all__ = ["BaseScheduler"]


class BaseScheduler(_ConfigurationMixin, _TaskAPIMixin, _ClusterAPIMixin, _LifecycleMixin):
    """Configuration, the task API and the store pass shared by every scheduler.

    Options (keyword arguments, or ``global_config`` entries under ``"asyncz."``):

    - ``timezone``: zone for naive datetimes and triggers (default: the local zone)
    - ``identity``: this scheduler's name as the owner of store leases and in events
    - ``stores``: instance alias -> store instance, plugin alias, or config dict with
      ``"type"`` (plugin alias) or ``"class"`` (``"module:Class"``) plus constructor options
    - ``executors``: the same for executors
    - ``task_defaults``: defaults for tasks added without them: ``mistrigger_grace_time``
      (``None``: never too late to run), ``coalesce`` (True), ``max_instances`` (1),
      ``timeout`` (None)
    - ``logger_name``: the scheduler logs to ``asyncz.schedulers.<logger_name>``
    - ``lock_path``: a file-lock path template (``{store}``, ``{pgrp}``, ``{ppid}``); each
      store is then processed only by the process holding its lock
    - ``startup_delay``: seconds after start before the first run of tasks stored at start
      (default 0, or 1 with ``lock_path``), so that restarting workers do not stampede
    - ``store_retry_interval``: seconds before a store is tried again after an error or a
      lock held elsewhere (default 10)
    - ``plugin_registry``: where plugin aliases are looked up (default: the process-wide one)
    - ``loggers_class``: a class (or ``"module:Class"``) whose instances map logger names to
      loggers (default :class:`~asyncz.core.logs.ClassicLogging`)
    - ``heartbeat_stale_after``: seconds without a heartbeat after which an instance counts
      as stale in ``get_scheduler_instance_infos()`` (default 30)
    - ``heartbeat_interval``: seconds between the heartbeats this scheduler writes to stores
      with an instance registry (every asyncz store but the memory one); the same thread
      renews its leases (default 2)
    - ``heartbeat_dead_after``: seconds without a heartbeat after which the other schedulers
      on a store declare one dead, take over its leases and resolve its unfinished runs per
      each task's ``on_crash`` (default: three heartbeat intervals)
    - ``shape``: the Shape that reads ``task_defaults`` given as a model object (a name such
      as ``"dataclass"``, a Shape class or instance; see :mod:`asyncz.shapes`)
    """

    #: Plugin aliases of what ``start()`` adds as "default" when none was configured; a
    #: scheduler without an event loop runs tasks in threads.
    default_executor_alias: ClassVar[str] = "threadpool"
    default_store_alias: ClassVar[str] = "memory"
    option_names: ClassVar[frozenset[str]] = frozenset(
        {
            "timezone",
            "identity",
            "stores",
            "executors",
            "task_defaults",
            "logger_name",
            "lock_path",
            "startup_delay",
            "store_retry_interval",
            "plugin_registry",
            "loggers_class",
            "shape",
            "heartbeat_stale_after",
            "heartbeat_interval",
            "heartbeat_dead_after",
        }
    )

    def __init__(self, global_config: Mapping[str, Any] | None = None, **options: Any) -> None:
        self._lock = threading.RLock()
        # Held by a pass while it hands out and takes back due tasks, and by run_task while
        # it runs due times by hand: both must not take the same due time.
        self._due_lock = threading.RLock()
        self._listeners: list[tuple[Callable[[Any], Any], int]] = []
        self._listener_mask = 0
        # The cluster parts of a started scheduler (asyncz.core.cluster), when a store has
        # an instance registry or run records.
        self._heartbeat: Heartbeat | None = None
        self._run_recorder: RunRecorder | None = None
        # Aliases of stores where runs of dead schedulers may wait for a rerun.
        self._rerun_stores: set[str] = set()
        # When the store pass now running began (time.monotonic()), None between passes.
        self._pass_started: float | None = None
        # Fires to read again after a failed fire_tasks (see the engine's _resolve_fires).
        self._unresolved = {}
        self._fired_since = set()
        # Tasks added before start, by id (in the order they were added).
        self._pending: dict[str, _PendingTask] = {}
        self._stores: dict[str, Store] = {}
        self._executors: dict[str, Executor] = {}
        self._store_locks: dict[str, LockProtectedProtocol] = {}
        self._start_count = 0
        self._submitted_count = 0
        self.started_at: datetime | None = None
        self.state = SchedulerState.STOPPED
        self.setup(global_config, **options)

    # Asyncz's attribute names for the components, listeners and the task-level lock.
    @property
    def stores(self) -> dict[str, Store]:
        return self._stores

    @stores.setter
    def stores(self, stores: dict[str, Store]) -> None:
        self._stores = stores

    @property
    def executors(self) -> dict[str, Executor]:
        return self._executors

    @executors.setter
    def executors(self, executors: dict[str, Executor]) -> None:
        self._executors = executors

    @property
    def listeners(self) -> list[tuple[Callable[[Any], Any], int]]:
        return list(self._listeners)

    @listeners.setter
    def listeners(self, listeners: list[tuple[Callable[[Any], Any], int]]) -> None:
        with self._lock:
            self._listeners = list(listeners)
            self._refresh_listener_mask()

    def create_lock(self) -> threading.RLock:
        """A lock for a custom scheduler's own state."""
        return threading.RLock()

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError(
            "Schedulers cannot be serialized; give tasks references to module-level functions "
            "instead of objects that hold a scheduler"
        )
