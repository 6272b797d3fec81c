"""What the executors that hand runs to a worker fleet (Celery, Dask) share: a submission and
its runs as this process tracks them, and what becomes of them when the executor lets go.

Here: :func:`positive_seconds`, :class:`Submission`, :class:`FleetRun` and :func:`let_go`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from asyncz.core.execution import RunReporter
from asyncz.core.task import Task


def positive_seconds(name: str, value: Any) -> float:
    """``value`` as a float if it is a number of seconds above 0, else a ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")
    return float(value)


class Submission:
    """One submission of a task: its run times, sent one at a time, in order."""

    __slots__ = ("index", "reference", "reporter", "run_times", "task")

    def __init__(self, task: Task, run_times: Sequence[datetime], reporter: RunReporter) -> None:
        self.task = task
        self.run_times = list(run_times)
        self.index = 0  # the next run time to send
        self.reporter = reporter
        #: the callable as the fleet names it (set by executors that send references)
        self.reference: Any = None


class FleetRun:
    """One run on the fleet, from the moment it is sent to its outcome."""

    __slots__ = (
        "deadline",
        "future",
        "heard",
        "host",
        "run_id",
        "run_time",
        "start",
        "started_at",
        "submission",
    )

    def __init__(self, run_id: str, submission: Submission, run_time: datetime) -> None:
        self.run_id = run_id
        self.submission = submission
        self.run_time = run_time
        self.started_at: datetime | None = None
        self.start = time.perf_counter()  # until started: when it was sent
        self.deadline: float | None = None
        self.heard = time.monotonic()
        self.host: str | None = None
        self.future: Any = None


def let_go(
    executor: Any,
    logger: logging.Logger,
    fleet: str,
    runs: Iterable[FleetRun],
    unsent: Iterable[Submission],
) -> None:
    """The executor stops without waiting: runs on the fleet are no longer followed (their ids
    are logged, so their outcome can be found there), runs not sent yet are reported as not
    run; none of them counts against ``max_instances`` any more."""
    runs = list(runs)
    if runs:
        logger.warning(
            "Executor %r shut down without waiting: %d run(s) on the %s will not be reported "
            "here: %s",
            executor.alias,
            len(runs),
            fleet,
            ", ".join(run.run_id for run in runs),
        )
        for run in runs:
            executor.run_finished(run.submission.task.id)
    for submission in unsent:
        try:
            submission.reporter.not_run(
                submission.run_times[submission.index :],
                "the executor was shut down before they were sent",
            )
        finally:
            executor.run_finished(submission.task.id)


def shut_down(executor: Any, wait: bool, unsent: str) -> None:
    """A fleet executor's ``shutdown``: with ``wait``, send what is queued and wait for every
    outcome; without, report what is queued as not run (``unsent`` says why); then stop the
    executor's courier thread."""
    if not executor.accepting:
        return
    executor._accepting = False
    queued = executor.take_queued()
    courier = executor._courier
    if wait:
        for task, run_times in queued:
            executor._launch_or_release(task, run_times)
        executor.wait_idle()
    else:
        executor.not_run(queued, unsent)
    executor._courier = None
    if courier is not None:
        courier.stop(wait=wait)
