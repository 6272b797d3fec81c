"""The dashboard's log capture: storages (:mod:`.storage`) and the logging handler
(:mod:`.handler`)."""

from __future__ import annotations

from asyncz.contrib.dashboard.logs.handler import (
    TaskLogHandler,
    get_task_logger,
    install_task_log_handler,
    uninstall_task_log_handler,
)
from asyncz.contrib.dashboard.logs.storage import (
    LogEntry,
    LogStorage,
    MemoryLogStorage,
    get_log_storage,
)

__all__ = [
    "LogEntry",
    "LogStorage",
    "MemoryLogStorage",
    "TaskLogHandler",
    "get_log_storage",
    "get_task_logger",
    "install_task_log_handler",
    "uninstall_task_log_handler",
]
