"""Event codes and the frozen event classes listeners receive.

The codes and their values are Asyncz's, so masks written for Asyncz keep working;
``TASK_STARTED`` is ours. Listeners are registered with a mask and receive an event when
``event.code & mask`` is non-zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

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
    "SchedulerEvent",
    "TaskEvent",
    "TaskExecutionEvent",
    "TaskQuarantinedEvent",
    "TaskSubmissionEvent",
]

SCHEDULER_START = SCHEDULER_STARTED = 2**0
SCHEDULER_SHUTDOWN = 2**1
SCHEDULER_PAUSED = 2**2
SCHEDULER_RESUMED = 2**3
EXECUTOR_ADDED = 2**4
EXECUTOR_REMOVED = 2**5
STORE_ADDED = 2**6
STORE_REMOVED = 2**7
ALL_TASKS_REMOVED = 2**8
TASK_ADDED = 2**9
TASK_REMOVED = 2**10
TASK_MODIFIED = 2**11
TASK_EXECUTED = 2**12
TASK_ERROR = 2**13
TASK_MISSED = 2**14
TASK_SUBMITTED = 2**15
TASK_MAX_INSTANCES = 2**16
TASK_STARTED = 2**17
#: a stored record could not be restored; it is left in its store, not deleted (ours)
TASK_QUARANTINED = 2**18

ALL_EVENTS = (
    SCHEDULER_START
    | SCHEDULER_SHUTDOWN
    | SCHEDULER_PAUSED
    | SCHEDULER_RESUMED
    | EXECUTOR_ADDED
    | EXECUTOR_REMOVED
    | STORE_ADDED
    | STORE_REMOVED
    | ALL_TASKS_REMOVED
    | TASK_ADDED
    | TASK_REMOVED
    | TASK_MODIFIED
    | TASK_EXECUTED
    | TASK_ERROR
    | TASK_MISSED
    | TASK_SUBMITTED
    | TASK_MAX_INSTANCES
    | TASK_STARTED
    | TASK_QUARANTINED
)


@attrs.frozen(kw_only=True)
class SchedulerEvent:
    """An event about the scheduler itself, or one of its stores or executors.

    :var code: the event code
    :var alias: the instance alias of the store or executor concerned, if any
    """

    code: int
    alias: str | None = None


@attrs.frozen(kw_only=True)
class TaskEvent(SchedulerEvent):
    """An event about one task.

    :var task_id: the task's id
    :var store: the instance alias of the store that holds the task
    :var scheduler_identity: the identity of the scheduler that emitted the event
    """

    task_id: str
    store: str | None = None
    scheduler_identity: str | None = None


@attrs.frozen(kw_only=True)
class TaskSubmissionEvent(TaskEvent):
    """A task was handed to its executor (or could not be: ``TASK_MAX_INSTANCES``).

    :var scheduled_run_times: the run times submitted (a list, as in Asyncz)
    :var source: ``"scheduled"`` for the loop, ``"manual"`` for ``run_task``
    :var coalesced_run_count: how many due run times coalescing dropped
    """

    scheduled_run_times: Sequence[datetime] = attrs.field(factory=list)
    source: str = "scheduled"
    coalesced_run_count: int = 0


@attrs.frozen(kw_only=True)
class TaskExecutionEvent(TaskEvent):
    """One run of a task started, finished, failed or was missed.

    :var scheduled_run_time: the time the run was due
    :var run_id: an id unique to this run, shared by its STARTED and outcome events
    :var started_at: when the run actually started (``None`` for a missed run)
    :var duration: seconds from start to finish (``None`` until finished)
    :var return_value: what the callable returned (``TASK_EXECUTED``)
    :var exception: what it raised (``TASK_ERROR``); its frames are cleared
    :var traceback: the formatted traceback (``TASK_ERROR``)
    """

    scheduled_run_time: datetime
    run_id: str | None = None
    started_at: datetime | None = None
    duration: float | None = None
    return_value: Any = None
    exception: BaseException | None = None
    traceback: str | None = None


@attrs.frozen(kw_only=True)
class TaskQuarantinedEvent(TaskEvent):
    """A stored task could not be restored (``TASK_QUARANTINED``).

    The record stays in the store untouched, the other tasks keep running, and the task loads
    again once the cause is fixed. Reported once per task and reason.

    :var reason: why the record cannot be restored, and what would fix it
    """

    reason: str = ""
