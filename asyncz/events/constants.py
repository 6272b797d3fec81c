"""Asyncz's path ``asyncz.events.constants``: the event codes.

As in Asyncz, the exceptions listeners most often meet are importable from here too.
"""

from asyncz.core.errors import (
    MaximumInstancesError,
    SchedulerAlreadyRunningError,
    SchedulerNotRunningError,
    TaskLookupError,
)
from asyncz.core.events import (
    ALL_EVENTS,
    ALL_TASKS_REMOVED,
    EXECUTOR_ADDED,
    EXECUTOR_REMOVED,
    SCHEDULER_PAUSED,
    SCHEDULER_RESUMED,
    SCHEDULER_SHUTDOWN,
    SCHEDULER_START,
    SCHEDULER_STARTED,
    STORE_ADDED,
    STORE_REMOVED,
    TASK_ADDED,
    TASK_ERROR,
    TASK_EXECUTED,
    TASK_MAX_INSTANCES,
    TASK_MISSED,
    TASK_MODIFIED,
    TASK_QUARANTINED,
    TASK_REMOVED,
    TASK_STARTED,
    TASK_SUBMITTED,
)

__all__ = [
    "ALL_EVENTS",
    "ALL_TASKS_REMOVED",
    "EXECUTOR_ADDED",
    "EXECUTOR_REMOVED",
    "SCHEDULER_PAUSED",
    "SCHEDULER_RESUMED",
    "SCHEDULER_SHUTDOWN",
    "SCHEDULER_START",
    "SCHEDULER_STARTED",
    "STORE_ADDED",
    "STORE_REMOVED",
    "TASK_ADDED",
    "TASK_ERROR",
    "TASK_EXECUTED",
    "TASK_MAX_INSTANCES",
    "TASK_MISSED",
    "TASK_MODIFIED",
    "TASK_QUARANTINED",
    "TASK_REMOVED",
    "TASK_STARTED",
    "TASK_SUBMITTED",
    "MaximumInstancesError",
    "SchedulerAlreadyRunningError",
    "SchedulerNotRunningError",
    "TaskLookupError",
]
