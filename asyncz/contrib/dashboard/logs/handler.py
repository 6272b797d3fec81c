"""From :mod:`logging` to the dashboard's log storage.

Here: :class:`TaskLogHandler` (turns log records into :class:`LogEntry` objects),
:func:`install_task_log_handler` (puts it on the ``asyncz`` logger and on the root logger, once
per process however many dashboards are built) and :func:`get_task_logger` (a logger bound to a
task id). Not here: the storages themselves (:mod:`asyncz.contrib.dashboard.logs.storage`).

What is captured:

* every record of the ``asyncz`` logger namespace (at the levels that namespace lets through);
* records of any other logger that name a task or a run in their extras: ``task_id``,
  ``job_id`` or ``asyncz_task_id``, or ``run_id``.

The ``asyncz`` logger is given the level ``INFO`` at installation when it has no level of its
own and would otherwise let only warnings through (the root logger's default), so that task logs
reach the dashboard; give it a level yourself to decide otherwise.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, MutableMapping
from datetime import datetime, timezone
from typing import Any

from asyncz.contrib.dashboard.logs.storage import LogEntry, LogStorage, get_log_storage

__all__ = [
    "TASK_ID_FIELDS",
    "TASK_LOGGER_NAME",
    "TaskLogHandler",
    "TaskLoggerAdapter",
    "get_task_logger",
    "install_task_log_handler",
    "uninstall_task_log_handler",
]

UTC = timezone.utc

#: The logger namespace captured in full.
NAMESPACE = "asyncz"
#: The logger :func:`get_task_logger` binds (inside the captured namespace).
TASK_LOGGER_NAME = "asyncz.tasks"
#: Record attributes that name a task, in the order they are looked at.
TASK_ID_FIELDS = ("task_id", "job_id", "asyncz_task_id")
_OWN_FIELDS = frozenset((*TASK_ID_FIELDS, "run_id", "scheduler_identity"))
# What every LogRecord has: not extras.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}

_install_lock = threading.Lock()
_formatter = logging.Formatter()


def _in_namespace(name: str) -> bool:
    return name == NAMESPACE or name.startswith(NAMESPACE + ".")


class TaskLogHandler(logging.Handler):
    """Appends log records to a :class:`LogStorage` as :class:`LogEntry` objects.

    ``tagged_only``: keep only records naming a task or a run, and leave the ``asyncz``
    namespace alone (the handler on that namespace keeps those) — the root logger's handler.

    A record logged while this handler is storing one in the same thread (a storage that logs)
    is not stored, so a logging storage cannot recurse into itself. ``storage`` may be
    replaced at any time (:func:`install_task_log_handler` does).
    """

    #: Found by :func:`install_task_log_handler` on a logger, even across module reloads.
    asyncz_dashboard_handler = True

    def __init__(self, storage: LogStorage, *, tagged_only: bool = False) -> None:
        super().__init__(logging.NOTSET)
        self.storage = storage
        self.tagged_only = tagged_only
        self._busy = threading.local()

    def handle(self, record: logging.LogRecord) -> Any:
        # No handler-wide lock: the storage is thread-safe, and one slow append must not hold
        # up every other thread's logging.
        rv = self.filter(record)
        if isinstance(rv, logging.LogRecord):  # Python 3.12+: a filter may return a record
            record = rv
        if rv:
            self.emit(record)
        return rv

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._busy, "active", False):
            return
        task_id = None
        for name in TASK_ID_FIELDS:
            value = getattr(record, name, None)
            if value is not None and value != "":
                task_id = str(value)
                break
        run_id = getattr(record, "run_id", None)
        if self.tagged_only and (_in_namespace(record.name) or (task_id is None and not run_id)):
            return
        self._busy.active = True
        try:
            self.storage.append(self.entry_for(record, task_id, run_id))
        except Exception:
            self.handleError(record)
        finally:
            self._busy.active = False

    @staticmethod
    def entry_for(record: logging.LogRecord, task_id: str | None, run_id: Any) -> LogEntry:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{_formatter.formatException(record.exc_info)}"
        elif record.exc_text:
            message = f"{message}\n{record.exc_text}"
        if record.stack_info:
            message = f"{message}\n{record.stack_info}"
        extra = {
            key: value
            for key, value in vars(record).items()
            if key not in _RECORD_FIELDS and key not in _OWN_FIELDS and not key.startswith("_")
        }
        return LogEntry(
            ts=datetime.fromtimestamp(record.created, UTC),
            level=record.levelname,
            levelno=record.levelno,
            message=message,
            logger=record.name,
            task_id=task_id,
            run_id=run_id,
            scheduler_identity=getattr(record, "scheduler_identity", None),
            extra=extra,
        )


def _installed(logger: logging.Logger) -> TaskLogHandler | None:
    for handler in logger.handlers:
        if getattr(handler, "asyncz_dashboard_handler", False):
            return handler  # type: ignore[return-value]
    return None


def install_task_log_handler(storage: LogStorage | None = None) -> TaskLogHandler:
    """Capture log records into ``storage`` (by default :func:`get_log_storage`'s).

    Idempotent: the first call adds one handler to the ``asyncz`` logger and one to the root
    logger; later calls only point them at ``storage``, so records always go to the storage
    given last, once. Returns the ``asyncz`` logger's handler.
    """
    if storage is None:
        storage = get_log_storage()
    elif not callable(getattr(storage, "append", None)):
        raise TypeError(f"a log storage needs an append(entry) method, got {storage!r}")
    with _install_lock:
        namespace = logging.getLogger(NAMESPACE)
        handler = _installed(namespace)
        if handler is None:
            handler = TaskLogHandler(storage)
            namespace.addHandler(handler)
        else:
            handler.storage = storage
        root = logging.getLogger()
        root_handler = _installed(root)
        if root_handler is None:
            root.addHandler(TaskLogHandler(storage, tagged_only=True))
        else:
            root_handler.storage = storage
        if namespace.level == logging.NOTSET and namespace.getEffectiveLevel() > logging.INFO:
            namespace.setLevel(logging.INFO)
    return handler


def uninstall_task_log_handler() -> None:
    """Remove the handlers :func:`install_task_log_handler` added (the level it set stays)."""
    with _install_lock:
        for logger in (logging.getLogger(NAMESPACE), logging.getLogger()):
            handler = _installed(logger)
            if handler is not None:
                logger.removeHandler(handler)


class TaskLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger adapter adding the bound ``task_id`` (and ``run_id``) to each record's extras;
    extras given to a call are kept and win over the bound ones."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        bound: Mapping[str, Any] = self.extra or {}
        given = kwargs.get("extra")
        kwargs["extra"] = {**bound, **given} if given else dict(bound)
        return msg, kwargs


def get_task_logger(
    task_id: str, run_id: str | None = None, *, name: str = TASK_LOGGER_NAME
) -> TaskLoggerAdapter:
    """A logger whose records carry ``task_id`` (and ``run_id``), so the dashboard shows them
    with the task. ``name`` is the underlying logger (by default ``asyncz.tasks``)."""
    if not isinstance(task_id, str) or not task_id:
        raise TypeError(f"a task id must be a non-empty string, got {task_id!r}")
    extra: dict[str, Any] = {"task_id": task_id}
    if run_id is not None:
        extra["run_id"] = run_id
    return TaskLoggerAdapter(logging.getLogger(name), extra)
