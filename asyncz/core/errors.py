"""The exception tree of asyncz.

Every exception asyncz raises on purpose derives from :class:`AsynczException`. Names that Asyncz
users already catch are kept; messages name the bad value and say what would be valid::

    AsynczException
    ├── AsynczLookupError (LookupError)
    │   ├── TaskLookupError (KeyError)       no task with that id in the store(s)
    │   ├── SchedulerLookupError             a task is not bound to any scheduler
    │   └── UnknownAliasError                no plugin registered under that alias
    ├── ConflictError
    │   ├── ConflictIdError (KeyError)       a task with that id already exists
    │   ├── TaskConflictError                another writer changed the task since it was read
    │   └── DuplicateAliasError              two distributions register the same alias
    ├── MaximumInstancesError                a task already runs max_instances times
    ├── SchedulerAlreadyRunningError
    ├── SchedulerNotRunningError
    ├── ConversionError (ValueError)         a value cannot be converted (reference, date)
    ├── ConversionTypeError (TypeError)      a value of a type that cannot be converted
    ├── TaskFieldError (ValueError, TypeError)   a Task field given a value it cannot take
    ├── PluginLoadError                      a plugin could not be imported or registered
    ├── SerializationError (ValueError)      a task cannot be turned into a stored record
    └── TaskRestoreError                     a stored record cannot be turned back into a task

Validation of user input raises ``ValueError`` or ``TypeError`` (a bad trigger argument), or an
exception of this tree that is also one of them (a bad task field, a bad date string), so code
written for Asyncz (which raises ``AsynczException``) and plain Python code both catch it.

:func:`strip_traceback` lives here too: it depends on the standard library only, so process-pool
workers can use it without importing the engine.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence

__all__ = [
    "AsynczException",
    "AsynczLookupError",
    "ConversionError",
    "ConversionTypeError",
    "ConflictError",
    "ConflictIdError",
    "DuplicateAliasError",
    "MaximumInstancesError",
    "PluginLoadError",
    "SchedulerAlreadyRunningError",
    "SchedulerLookupError",
    "SchedulerNotRunningError",
    "SerializationError",
    "TaskConflictError",
    "TaskLookupError",
    "TaskFieldError",
    "TaskRestoreError",
    "strip_traceback",
    "UnknownAliasError",
]


class AsynczException(Exception):
    """Base class of every exception raised by asyncz."""


class AsynczLookupError(AsynczException, LookupError):
    """Something asked for by name or id does not exist."""


class TaskLookupError(AsynczLookupError, KeyError):
    """No task with the given id exists."""

    def __init__(self, task_id: str, where: str | None = None) -> None:
        self.task_id = task_id
        place = f" in store {where!r}" if where else ""
        super().__init__(f"No task with id {task_id!r} was found{place}.")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class SchedulerLookupError(AsynczLookupError):
    """A task method that needs a scheduler was called on a task that has none."""


class UnknownAliasError(AsynczLookupError):
    """No plugin is registered under the requested plugin alias.

    :ivar kind: the plugin kind asked for (``"trigger"``, ``"store"``, ...)
    :ivar alias: the alias asked for
    """

    def __init__(self, kind: str, alias: str, message: str) -> None:
        self.kind = kind
        self.alias = alias
        super().__init__(message)


class ConflictError(AsynczException):
    """A change would overwrite something that already exists."""


class ConflictIdError(ConflictError, KeyError):
    """A task with the same id already exists in the store."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(
            f"A task with id {task_id!r} already exists; pick another id or pass "
            "replace_existing=True."
        )

    def __str__(self) -> str:
        return str(self.args[0])


class TaskConflictError(ConflictError):
    """A conditional write lost: the stored task changed after the writer read it.

    Every write to a shared store names the version it read; another scheduler (or process)
    writing in between makes it fail instead of silently undoing that change. The scheduler's
    own calls (``update_task``, ``pause_task``, ...) re-read and re-apply their change when this
    happens; it reaches the caller only from a direct ``store.update_task(task)`` with a task
    read before the other change, or when the task keeps changing under a retried call.
    """

    def __init__(
        self, task_id: str, store: str | None, expected: int | None, found: int | None
    ) -> None:
        self.task_id = task_id
        self.store = store
        self.expected = expected
        self.found = found
        where = f" in store {store!r}" if store else ""
        super().__init__(
            f"Task {task_id!r}{where} was changed by another writer after it was read (read "
            f"at version {expected}, now at version {found}); read it again and re-apply the "
            "change, as scheduler.update_task() does"
        )


class DuplicateAliasError(ConflictError):
    """Two plugins register the same alias for the same plugin kind."""

    def __init__(self, kind: str, alias: str, providers: Sequence[str]) -> None:
        self.kind = kind
        self.alias = alias
        self.providers = tuple(providers)
        super().__init__(
            f"The {kind} plugin alias {alias!r} is registered by more than one plugin: "
            f"{' and '.join(self.providers)}. Uninstall one of them or block one with "
            "ASYNCZ_DISABLE_PLUGINS=<entry point name>."
        )


class MaximumInstancesError(AsynczException):
    """The task is already running its maximum number of instances."""

    def __init__(self, task_id: str, max_instances: int) -> None:
        self.task_id = task_id
        self.max_instances = max_instances
        super().__init__(
            f"Task {task_id!r} is already running {max_instances} instance(s), its "
            "max_instances; this run was skipped."
        )


class SchedulerAlreadyRunningError(AsynczException):
    """The operation needs a stopped scheduler."""

    def __str__(self) -> str:
        return "The scheduler is already running."


class SchedulerNotRunningError(AsynczException):
    """The operation needs a running scheduler."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "The scheduler has not been started."


class PluginLoadError(AsynczException, ImportError):
    """A plugin's entry point could not be imported or its hooks could not be registered.

    Also an ``ImportError``: most often a driver the plugin needs is not installed, and the
    message names the package and the extra that installs it."""


class SerializationError(AsynczException, ValueError):
    """A task cannot be turned into a record a persistent store can keep."""


class TaskRestoreError(AsynczException):
    """A stored record cannot be turned back into a task (it is left in the store)."""


def strip_traceback(exc: BaseException) -> None:
    """Drop the frames of ``exc`` and of the exceptions chained to it.

    A traceback keeps every frame's locals alive; an exception kept in an event (or in a
    listener's history) must not keep the failed run's data with it.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if current.__traceback__ is not None:
            traceback.clear_frames(current.__traceback__)
            current.__traceback__ = None
        todo.append(current.__cause__)
        todo.append(current.__context__)


class ConversionError(AsynczException, ValueError):
    """A value that cannot be converted (a bad reference, date string, ...).

    Both an :class:`~asyncz.exceptions.AsynczException`, as in Asyncz, and a ``ValueError``.
    """


class ConversionTypeError(AsynczException, TypeError):
    """A value of a type that cannot be converted; an ``AsynczException`` and a ``TypeError``."""


class TaskFieldError(AsynczException, ValueError, TypeError):
    """A Task field was given a value it cannot take.

    Both a ``ValueError`` and a ``TypeError``: Asyncz raises ``TypeError`` for every bad task
    field (a zero ``max_instances`` included), asyncz raised ``ValueError`` for values of the
    right type out of range; code written for either keeps catching it. The message says what
    is valid, in Asyncz's words; the bad value is attached as a note (shown under the message
    in tracebacks; on Python 3.10, which has no notes, appended to the message).
    """
