"""The contracts plugins fulfil — Trigger, Store, Executor, Serializer — and small base classes.

The protocols state what the scheduler relies on; the ``Base*`` classes are conveniences a plugin
may inherit from, not requirements. A plugin imports only the kernel, the standard library and
its own optional dependency.
"""

from __future__ import annotations

import enum
import random
import threading
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import logging

    from asyncz.core.task import Task

__all__ = [
    "BaseStore",
    "BaseTrigger",
    "Executor",
    "Serializer",
    "Store",
    "Trigger",
]


@runtime_checkable
class Trigger(Protocol):
    """**Protocol**: decides when a task runs.

    A trigger is a pure function of its configuration: the same ``previous_time`` always gives
    the same answer (jitter aside), so a store only needs to keep its state, never a cursor.
    """

    #: the plugin alias the trigger is registered under; stores record ``(alias, state)``
    alias: ClassVar[str]

    def get_next_trigger_time(
        self, timezone: tzinfo, previous_time: datetime | None, now: datetime | None = None
    ) -> datetime | None:
        """The first fire time strictly after ``previous_time``, or ``None`` when exhausted.

        With ``previous_time=None`` it is the first fire time at or after ``now``. The result is
        aware, in the trigger's time zone, and strictly increasing over successive calls. It
        must return in bounded time, giving up with ``None`` or an error rather than looping.
        """
        ...

    def __getstate__(self) -> dict[str, Any]:
        """Plain data (str, int, float, bool, None, lists, dicts) to rebuild the trigger from."""
        ...

    def __setstate__(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class Store(Protocol):
    """**Protocol**: keeps tasks between runs. Synchronous and safe to call from any thread.

    The scheduler finds due tasks only through the lease path: :meth:`acquire_due_tasks` hands
    due tasks to one owner (a scheduler identity) for ``lease`` seconds, during which no other
    owner gets them; :meth:`release_tasks` records their next run times. This is what lets
    several schedulers share one store without running a task twice.

    Optional members, read with ``getattr`` so that a store without them works:
    ``blocking`` (default True) — calls do I/O, so the scheduler makes them off the event loop;
    ``poll_interval`` (default None) — seconds after which the scheduler looks at the store
    again even without a local change, for stores that other processes write to;
    ``check_task(task)`` — raise ``SerializationError`` for a task the store could not keep,
    which the scheduler calls when a task is added before the store has started.

    Members for several schedulers sharing the store (``docs/cluster.md``; every asyncz store
    but the memory one has them):

    - versions: every task it returns carries ``store_version``; ``update_task(task, *,
      keep_schedule=False)`` is conditional on it (``TaskConflictError`` when another writer
      came first) and, with ``keep_schedule``, leaves the stored run time and lease alone;
    - fencing: each acquire's lease has a token the store instance remembers; a release, fire
      or renewal whose token is no longer current is refused; ``renew_leases(owner, lease)``
      extends the leases it still holds;
    - instances: ``register_instance(identity, info)``, ``heartbeat(identity, info,
      dead_after)`` (returns the peers it declared dead, ending their leases and resolving
      their runs), ``unregister_instance(identity)``, ``get_instances()``;
    - run records (:mod:`asyncz.core.runs`): ``fire_tasks(owner, fires)`` in place of
      ``release_tasks``, ``finish_runs(outcomes)``, ``get_runs(task_id, limit)``,
      ``take_reruns(owner, limit)``.
    """

    def start(self, scheduler: Any, alias: str) -> None: ...

    def shutdown(self) -> None: ...

    def add_task(self, task: Task) -> None:
        """Store a new task; ``ConflictIdError`` if its id is taken."""
        ...

    def update_task(self, task: Task) -> None:
        """Replace a stored task (and drop any lease on it); ``TaskLookupError`` if missing.

        Stores for several schedulers also take ``keep_schedule=False`` (see the class)."""
        ...

    def delete_task(self, task_id: str) -> None:
        """Remove a task; ``TaskLookupError`` if missing."""
        ...

    def remove_all_tasks(self) -> None: ...

    def lookup_task(self, task_id: str) -> Task | None: ...

    def get_all_tasks(self) -> list[Task]:
        """Every task, by next run time then id; paused tasks last."""
        ...

    def get_due_tasks(self, now: datetime) -> list[Task]:
        """Tasks due at ``now``, in run-time order (for inspection; the loop acquires instead)."""
        ...

    def get_next_run_time(self) -> datetime | None:
        """The earliest time this store needs the scheduler's attention, or ``None``."""
        ...

    def acquire_due_tasks(self, now: datetime, owner: str, limit: int, lease: float) -> list[Task]:
        """Lease at most ``limit`` due tasks to ``owner`` for ``lease`` seconds, earliest first.

        Tasks leased to another owner whose lease has not expired are skipped.
        """
        ...

    def release_tasks(
        self, owner: str, next_run_times: Mapping[str, datetime | None]
    ) -> Collection[str] | None:
        """End ``owner``'s leases, giving each task its new next run time; return the ids
        released.

        ``None`` means the trigger is exhausted and the task is deleted. A task whose lease was
        lost meanwhile (it was updated, deleted or re-leased) is left as it is and not among
        the ids returned: the scheduler then does not run it. (A store returning ``None`` is
        taken to have released them all.)
        """
        ...


@runtime_checkable
class Executor(Protocol):
    """**Protocol**: runs tasks and reports each run as events through the scheduler."""

    def start(self, scheduler: Any, alias: str) -> None: ...

    def shutdown(self, wait: bool = True) -> None: ...

    def send_task(self, task: Task, run_times: Sequence[datetime]) -> None:
        """Run ``task`` once per run time; ``MaximumInstancesError`` if it is at its limit.

        The runs must start after this call returns (the scheduler reports ``TASK_SUBMITTED``
        then, and listeners must see it before the run's ``TASK_STARTED``).
        """
        ...


@runtime_checkable
class Serializer(Protocol):
    """**Protocol**: turns a task record (plain data) into bytes and back.

    ``loads`` returns the record as ``dumps`` got it, or in the packed form of
    :func:`asyncz.core.records.pack_record` (which decodes faster); readers take both.
    """

    def dumps(self, state: dict[str, Any]) -> bytes: ...

    def loads(self, data: bytes) -> dict[str, Any] | tuple[Any, ...]: ...


class _Own(enum.Enum):
    JITTER = "the trigger's own jitter"


class BaseTrigger:
    """Helpers for triggers: jitter and state through ``__getstate__``/``__setstate__``.

    ``allow_mistrigger_by_default`` is Asyncz's flag for triggers (like a ``date`` trigger with
    no time) whose runs should never be reported as missed.
    """

    __slots__ = ()
    alias: ClassVar[str]
    allow_mistrigger_by_default: bool = False
    jitter: float | None = None

    def __init__(self, *args: Any, **attributes: Any) -> None:
        """Keep each keyword as an attribute, as Asyncz's trigger models keep their fields, so
        a subclass written for Asyncz can call ``super().__init__(jitter=..., ...)``."""
        if args:
            raise TypeError(
                f"{type(self).__name__}() got positional arguments {args!r}, which it has no "
                "parameters for: give keyword arguments (kept as attributes), or define "
                "__init__ to take them"
            )
        for name, value in attributes.items():
            setattr(self, name, value)

    def apply_jitter(
        self,
        next_time: datetime | None,
        jitter: float | datetime | _Own | None = _Own.JITTER,
        now: datetime | None = None,
        *,
        end_at: datetime | None = None,
    ) -> datetime | None:
        """Add up to ``jitter`` seconds (default: ``self.jitter``) to ``next_time``, never
        beyond ``end_at``. ``now`` is accepted for Asyncz's signature
        ``apply_jitter(next_trigger_time, jitter, now)`` and not needed.
        """
        if isinstance(jitter, datetime):  # asyncz's earlier apply_jitter(next_time, end_at)
            end_at = jitter
            jitter = _Own.JITTER
        if jitter is _Own.JITTER:
            jitter = self.jitter
        if next_time is None or not jitter:
            return next_time
        # Elapsed seconds, added in UTC: wall-clock arithmetic would be off next to a DST
        # change (and datetimes of one zone compare by wall time, ignoring ``fold``).
        utc = next_time.astimezone(timezone.utc)
        jittered = utc + timedelta(seconds=random.uniform(0, jitter))
        if end_at is not None and jittered > end_at.astimezone(timezone.utc):
            return end_at if end_at.astimezone(timezone.utc) >= utc else next_time
        return jittered.astimezone(next_time.tzinfo)

    def check_state_version(self, state: dict[str, Any], supported: int) -> None:
        """Refuse stored state of a version this trigger cannot read (a newer asyncz wrote it)."""
        version = state.get("version")
        if version != supported:
            raise ValueError(
                f"{self.alias} trigger state version {version!r} is not supported (this asyncz "
                f"reads version {supported})"
            )

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return bool(self.__getstate__() == other.__getstate__())

    def __hash__(self) -> int:
        return hash((type(self), repr(sorted(self.__getstate__().items()))))

    def __getstate__(self) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement __getstate__")

    def __setstate__(self, state: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement __setstate__")


class BaseStore:
    """Helpers for stores: instance alias, logger, scheduler reference.

    A store written against Asyncz's API (``get_due_tasks`` without leases) can inherit
    :meth:`acquire_due_tasks`/:meth:`release_tasks` from here; they are correct for a store used
    by one scheduler. Stores shared between processes implement them natively.
    """

    blocking: ClassVar[bool] = True
    poll_interval: float | None = None

    def __init__(self, alias: str | None = None, **options: Any) -> None:
        # ``options``: what a subclass passes up without consuming it, as Asyncz's BaseStore
        # takes it; kept, not interpreted.
        self.alias: str | None = alias
        self.options = options
        self.scheduler: Any = None
        self._lease_lock = threading.RLock()
        self._leases: dict[str, tuple[str, datetime]] = {}

    @property
    def logger(self) -> logging.Logger:
        import logging

        return logging.getLogger(f"asyncz.stores.{self.alias or type(self).__name__}")

    def start(self, scheduler: Any, alias: str) -> None:
        self.scheduler = scheduler
        self.alias = alias

    def shutdown(self) -> None:
        """Release resources; a store can be started again after shutdown."""

    def fix_task(self, task: Task) -> Task:
        """Bind a restored or added task to this store and its scheduler."""
        task.bind(self.scheduler, self.alias)
        return task

    # Generic lease path, on top of get_due_tasks/update_task/delete_task.
    def acquire_due_tasks(self, now: datetime, owner: str, limit: int, lease: float) -> list[Task]:
        acquired: list[Task] = []
        with self._lease_lock:
            for task in self.get_due_tasks(now):  # type: ignore[attr-defined]
                held = self._leases.get(task.id)
                if held is not None and held[1] > now:
                    continue  # leased (to anyone, us included: it is being handled)
                self._leases[task.id] = (owner, now + timedelta(seconds=lease))
                acquired.append(task)
                if len(acquired) >= limit:
                    break
        return acquired

    def release_tasks(
        self, owner: str, next_run_times: Mapping[str, datetime | None]
    ) -> Collection[str] | None:
        from asyncz.core.errors import TaskLookupError

        released: list[str] = []
        with self._lease_lock:
            for task_id, next_time in next_run_times.items():
                held = self._leases.get(task_id)
                if held is None or held[0] != owner:
                    continue
                del self._leases[task_id]
                try:
                    if next_time is None:
                        self.delete_task(task_id)  # type: ignore[attr-defined]
                    else:
                        task = self.lookup_task(task_id)  # type: ignore[attr-defined]
                        if task is None:
                            continue
                        task.next_run_time = next_time
                        self.update_task(task)  # type: ignore[attr-defined]
                except TaskLookupError:
                    continue  # deleted by the user meanwhile: nothing to release
                released.append(task_id)
        return released
