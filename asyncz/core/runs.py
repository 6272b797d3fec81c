"""Run records and fires: what a store keeps about each fire time of a task.

A **run record** exists once per ``(task id, scheduled fire time)``, unique in the store. It is
written in the same transaction (or script) that advances the task past that fire time — the
*fire* — so a second scheduler can never start the same fire time, whatever happened to the
leases. It then follows the run: ``started`` → ``succeeded`` / ``failed`` / ``missed`` (later
than its grace time) / ``skipped`` (the task already ran ``max_instances`` times across the
cluster), or ``abandoned`` (the scheduler that fired it died while it ran, and the task's
``on_crash`` is ``"skip"``). With ``on_crash="rerun"`` such a run is run once more, by another
scheduler, as attempt 2.

Stores that keep run records implement, besides the lease path of
:class:`~asyncz.core.protocols.Store`:

* ``fire_tasks(owner, fires)`` in place of ``release_tasks``: release each task as
  ``release_tasks`` does and, in the same transaction, insert a record per run time to start;
* ``finish_runs(outcomes)``: record how runs ended;
* ``get_runs(task_id=None, limit=50)``: the newest records first;
* ``take_reruns(owner, limit)``: hand the runs of dead schedulers marked for a rerun to one
  scheduler, once.

The scheduler uses them when a store has them (``getattr``), so a store without run records
works as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, Literal

import attrs

__all__ = [
    "ON_CRASH_POLICIES",
    "RUN_STATUSES",
    "Fire",
    "FireResult",
    "RunOutcome",
    "RunRecord",
    "summarize_error",
]

#: Every status a run record can have, in the order a run goes through them.
RUN_STATUSES: Final = ("started", "succeeded", "failed", "missed", "skipped", "abandoned")
#: What happens to a run whose scheduler died while it ran.
ON_CRASH_POLICIES: Final = ("skip", "rerun")
#: Error summaries are cut to this many characters in the store.
ERROR_SUMMARY_MAX: Final = 2000

RunStatus = Literal["started", "succeeded", "failed", "missed", "skipped", "abandoned"]


def summarize_error(error: str | None) -> str | None:
    """``error`` cut to what a run record keeps (the end of a traceback says the most)."""
    if error is None or len(error) <= ERROR_SUMMARY_MAX:
        return error
    return "..." + error[-(ERROR_SUMMARY_MAX - 3) :]


@attrs.frozen(kw_only=True)
class RunRecord:
    """One fire time of one task, as the store keeps it.

    :var task_id: the task
    :var scheduled_at: the fire time (aware, UTC); with ``task_id`` the record's key
    :var status: one of :data:`RUN_STATUSES`
    :var instance: the identity of the scheduler that fired it (the rerun's, after a rerun)
    :var fired_at: when the fire was committed
    :var run_id: the id of the run in the scheduler's events (known once it started)
    :var started_at: when the callable started, if it did
    :var finished_at: when the run ended, if it did
    :var duration: seconds from start to end
    :var error: a summary of the exception, for ``failed`` runs
    :var attempt: 1, or 2 for the rerun of a run whose scheduler died
    :var on_crash: the task's policy when the run was fired
    """

    task_id: str
    scheduled_at: datetime
    status: RunStatus
    instance: str
    fired_at: datetime | None = None
    run_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: float | None = None
    error: str | None = None
    attempt: int = 1
    on_crash: str = "skip"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (times as ISO 8601 strings), for JSON output."""
        data = attrs.asdict(self)
        for key in ("scheduled_at", "fired_at", "started_at", "finished_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


@attrs.frozen(kw_only=True)
class Fire:
    """What one scheduler's pass decided for one leased task.

    :var task_id: the task
    :var next_run_time: its new next run time (``None``: the trigger is exhausted, delete it)
    :var run_times: the fire times to start now (coalescing already applied); each gets a run
        record with status ``started``
    :var max_instances: how many runs of the task may be ``started`` at once across every
        scheduler on the store; run times over it are recorded as ``skipped``
    :var on_crash: the task's policy, kept in its run records
    """

    task_id: str
    next_run_time: datetime | None
    run_times: Sequence[datetime] = ()
    max_instances: int = 1
    on_crash: str = "skip"


@attrs.frozen(kw_only=True)
class FireResult:
    """The store's answer for one :class:`Fire` it committed (its lease was still held).

    :var started: run times recorded as ``started``: run them
    :var skipped: run times recorded as ``skipped`` (``max_instances`` reached cluster-wide)
    :var duplicates: run times that already had a record (another scheduler fired them): run
        nothing for them
    """

    task_id: str
    started: Sequence[datetime] = ()
    skipped: Sequence[datetime] = ()
    duplicates: Sequence[datetime] = ()


@attrs.frozen(kw_only=True)
class RunOutcome:
    """How one run ended, for ``store.finish_runs``. Applied only to a record still ``started``
    by ``instance`` (a scheduler declared dead cannot overwrite what the others decided)."""

    task_id: str
    scheduled_at: datetime
    instance: str
    status: RunStatus
    run_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: float | None = None
    error: str | None = None
