"""Asyncz's path ``asyncz.events.base``: the event classes."""

from asyncz.core.events import (
    SchedulerEvent,
    TaskEvent,
    TaskExecutionEvent,
    TaskQuarantinedEvent,
    TaskSubmissionEvent,
)

__all__ = [
    "SchedulerEvent",
    "TaskEvent",
    "TaskExecutionEvent",
    "TaskQuarantinedEvent",
    "TaskSubmissionEvent",
]
