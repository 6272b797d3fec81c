"""A scheduler's part in a cluster: its heartbeat, and the outcomes of its runs.

Schedulers meet only in their stores (DESIGN §11). Two threads, independent of the event loop
(a loop busy with the host application must not make its scheduler look dead, nor delay the
record of a finished run):

* :class:`Heartbeat` registers this scheduler in every store that keeps an instance registry,
  refreshes its heartbeat every ``heartbeat_interval`` seconds (on the store's clock), renews the
  leases the store holds for it, and through the store declares dead the peers whose heartbeat
  stopped more than ``heartbeat_dead_after`` seconds ago: their leases end at once (their tasks
  are due again now instead of when the leases run out) and their unfinished runs are resolved
  per the task's ``on_crash``. It unregisters the scheduler at shutdown.
* :class:`RunRecorder` turns the outcome events of runs fired from a store with run records
  (``TASK_EXECUTED``, ``TASK_ERROR``, ``TASK_MISSED``) into :class:`~asyncz.core.runs.RunOutcome`
  and writes them with ``store.finish_runs``, in batches: whatever finished while the previous
  write was in flight goes in the next one.

Both only use a store's optional members, found with ``getattr``; stores without them (the
memory store, a store written for Asyncz) are left out.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from asyncz.core import events
from asyncz.core.converters import utc_timestamp_us
from asyncz.core.records import from_timestamp_us
from asyncz.core.runs import RunOutcome, RunStatus, summarize_error

__all__ = ["Heartbeat", "RunRecorder", "instance_info"]

UTC = timezone.utc
#: The outcome events a run record is finished from.
OUTCOME_CODES = events.TASK_EXECUTED | events.TASK_ERROR | events.TASK_MISSED
_STATUS_OF = {
    events.TASK_EXECUTED: "succeeded",
    events.TASK_ERROR: "failed",
    events.TASK_MISSED: "missed",
}
#: Every this many heartbeats, look for runs of dead schedulers waiting for a rerun even when
#: this scheduler declared nobody dead (the one that did may have died before taking them).
_RERUN_SWEEP_EVERY = 10
#: How long the recorder waits for more outcomes before a write.
_GATHER_SECONDS = 0.02
#: Outcomes kept while a store cannot be written, oldest dropped beyond (with a log line).
_MAX_BACKLOG = 100_000


def instance_info(scheduler: Any) -> dict[str, Any]:
    """What a scheduler registers about itself: plain data, for peers, the CLI and dashboard."""
    from asyncz import __version__

    started = scheduler.started_at
    return {
        "identity": scheduler.identity,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "asyncz_version": __version__,
        "scheduler": type(scheduler).__name__,
        "started_at": started.astimezone(UTC).isoformat() if started is not None else None,
        "stores": sorted(scheduler._stores),
        "executors": sorted(scheduler._executors),
        "heartbeat_interval": scheduler.heartbeat_interval,
    }


class Heartbeat:
    """The heartbeat thread of one started scheduler (see the module docstring)."""

    def __init__(
        self,
        scheduler: Any,
        stores: Mapping[str, Any],
        interval: float,
        dead_after: float,
        lease: float,
    ) -> None:
        self.scheduler = scheduler
        self.identity: str = scheduler.identity
        self.logger: logging.Logger = scheduler.logger
        self.interval = interval
        self.dead_after = dead_after
        self.lease = lease
        self.stores = {
            alias: store
            for alias, store in stores.items()
            if callable(getattr(store, "heartbeat", None))
        }
        self.renewing = {
            alias: store
            for alias, store in stores.items()
            if callable(getattr(store, "renew_leases", None))
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beats = 0
        self.info: dict[str, Any] = {}

    @property
    def needed(self) -> bool:
        return bool(self.stores or self.renewing)

    def start(self) -> None:
        """Register in every store (a failure is logged: the next beat tries again) and start
        beating."""
        self.info = instance_info(self.scheduler)
        for alias, store in self.stores.items():
            register = getattr(store, "register_instance", None)
            if register is None:
                continue
            try:
                register(self.identity, self.info)
            except Exception:
                self.logger.exception(
                    "Cannot register scheduler %r in store %r", self.identity, alias
                )
        self._thread = threading.Thread(
            target=self._run, name=f"asyncz-heartbeat-{self.identity}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and unregister (the leases this scheduler still holds end now)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.interval + 5)
        for alias, store in self.stores.items():
            unregister = getattr(store, "unregister_instance", None)
            if unregister is None:
                continue
            try:
                unregister(self.identity)
            except Exception:
                self.logger.exception(
                    "Cannot unregister scheduler %r from store %r", self.identity, alias
                )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def beat(self) -> None:
        """One heartbeat in every store (called by the thread; tests call it directly)."""
        self._beats += 1
        sweep = self._beats % _RERUN_SWEEP_EVERY == 0
        wake = False
        for alias, store in self.stores.items():
            try:
                dead = store.heartbeat(self.identity, self.info, self.dead_after)
            except Exception:
                self.logger.exception("Heartbeat in store %r failed", alias)
                continue
            if dead:
                self.logger.warning(
                    "Declared dead in store %r (no heartbeat for over %.1f s): %s; their leases "
                    "are taken over and their unfinished runs resolved",
                    alias,
                    self.dead_after,
                    ", ".join(dead),
                )
                wake = True
            if dead or sweep:
                self.scheduler._request_reruns(alias)
                wake = True
        # Only a pass that has run for a third of the lease needs its leases renewed; a lease
        # a pass left behind (its fire failed) must run out, not be renewed forever.
        started = getattr(self.scheduler, "_pass_started", None)
        if started is not None and time.monotonic() - started >= self.lease / 3:
            for alias, store in self.renewing.items():
                try:
                    store.renew_leases(self.identity, self.lease)
                except Exception:
                    self.logger.exception("Renewing leases in store %r failed", alias)
        if wake:
            self.scheduler.wakeup()


class RunRecorder:
    """Writes how runs ended into the stores that keep run records (see the module docstring)."""

    def __init__(self, scheduler: Any, stores: Mapping[str, Any]) -> None:
        self.identity: str = scheduler.identity
        self.logger: logging.Logger = scheduler.logger
        self.writers: dict[str, Callable[[Sequence[RunOutcome]], Any]] = {
            alias: store.finish_runs
            for alias, store in stores.items()
            if callable(getattr(store, "finish_runs", None))
            and callable(getattr(store, "fire_tasks", None))
        }
        self._queue: list[tuple[str, RunOutcome]] = []
        # (store, task id) -> outcomes queued and not yet handed to a write: runs that ended
        # although their records still say "started" (see queued()).
        self._queued: Counter[tuple[str, str]] = Counter()
        # (store, task id, fire time µs) of runs fired here whose outcome is not queued yet:
        # what is left at shutdown never ended, and is recorded as abandoned.
        self._in_flight: set[tuple[str, str, int]] = set()
        self._ready = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def needed(self) -> bool:
        return bool(self.writers)

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name=f"asyncz-runs-{self.identity}", daemon=True
        )
        self._thread.start()

    def fired(self, store: str, runs: Iterable[tuple[str, Iterable[datetime]]]) -> None:
        """Note runs the store recorded as started here, as (task id, run times): their
        outcomes are expected."""
        if store in self.writers:
            keys = [(store, task_id, utc_timestamp_us(t)) for task_id, times in runs for t in times]
            if keys:
                with self._ready:
                    self._in_flight.update(keys)

    def stop(self) -> None:
        """Record the runs fired here that never ended as abandoned (the executors have shut
        down: no outcome will come), write what is queued (the thread's last batch), stop."""
        with self._ready:
            left, self._in_flight = self._in_flight, set()
        now = datetime.now(UTC)
        for store, task_id, when_us in sorted(left):
            self.put(
                store,
                RunOutcome(
                    task_id=task_id,
                    scheduled_at=from_timestamp_us(when_us) or now,
                    instance=self.identity,
                    status="abandoned",
                    finished_at=now,
                    error="the scheduler shut down before the run ended",
                ),
            )
        with self._ready:
            self._stopping = True
            self._ready.notify()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(30)

    # -- queueing --------------------------------------------------------------------------

    def record_event(self, event: Any) -> None:
        """Queue the outcome an event reports (called for every dispatched event)."""
        code = event.code
        if not code & OUTCOME_CODES:
            return
        store = getattr(event, "store", None)
        if store not in self.writers:
            return
        started_at = getattr(event, "started_at", None)
        duration = getattr(event, "duration", None)
        finished_at = None
        if started_at is not None and duration is not None:
            finished_at = started_at + timedelta(seconds=duration)
        elif code != events.TASK_MISSED:
            finished_at = datetime.now(UTC)
        error = None
        if code == events.TASK_ERROR:
            error = getattr(event, "traceback", None) or repr(getattr(event, "exception", None))
        self.put(
            store,
            RunOutcome(
                task_id=event.task_id,
                scheduled_at=event.scheduled_run_time,
                instance=self.identity,
                status=_STATUS_OF[code & OUTCOME_CODES],  # type: ignore[arg-type]
                run_id=getattr(event, "run_id", None) or None,
                started_at=started_at,
                finished_at=finished_at,
                duration=duration,
                error=summarize_error(error),
            ),
        )

    def record(
        self,
        store: str,
        task_id: str,
        run_times: Iterable[datetime],
        status: RunStatus,
        error: str | None = None,
    ) -> None:
        """Queue outcomes the engine knows itself (a run the executor refused)."""
        if store not in self.writers:
            return
        now = datetime.now(UTC)
        for run_time in run_times:
            self.put(
                store,
                RunOutcome(
                    task_id=task_id,
                    scheduled_at=run_time,
                    instance=self.identity,
                    status=status,
                    finished_at=now,
                    error=summarize_error(error),
                ),
            )

    def queued(self, store: str, task_id: str) -> int:
        """How many runs of the task ended here whose records the store still counts as
        ``started``: the engine allows that many more when the store checks the task's
        cluster-wide ``max_instances``, so a run is not skipped for a previous run of this
        scheduler that ended a moment ago. (Outcomes being written right now still count as
        started: at worst a run is skipped, never one too many started.)"""
        if not self._queued:
            return 0
        with self._ready:
            return self._queued.get((store, task_id), 0)

    def put(self, store: str, outcome: RunOutcome) -> None:
        with self._ready:
            if self._in_flight:
                self._in_flight.discard(
                    (store, outcome.task_id, utc_timestamp_us(outcome.scheduled_at))
                )
            self._queue.append((store, outcome))
            self._queued[(store, outcome.task_id)] += 1
            if len(self._queue) > _MAX_BACKLOG:
                self._forget(self._queue[: len(self._queue) - _MAX_BACKLOG])
                del self._queue[: len(self._queue) - _MAX_BACKLOG]
                self.logger.error(
                    "More than %d run outcomes could not be written; the oldest are dropped "
                    "(their run records stay 'started')",
                    _MAX_BACKLOG,
                )
            self._ready.notify()

    def _forget(self, items: Iterable[tuple[str, RunOutcome]]) -> None:
        """Uncount outcomes leaving the queue (call with the lock held)."""
        counts = self._queued
        for store, outcome in items:
            key = (store, outcome.task_id)
            left = counts[key] - 1
            if left > 0:
                counts[key] = left
            else:
                counts.pop(key, None)

    # -- writing ---------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._stopping:
                    self._ready.wait()
                stopping = self._stopping
            if not stopping:
                # Let the runs finishing about now join this write: one store call for many
                # outcomes costs the store (and the interpreter) far less than one call each.
                time.sleep(_GATHER_SECONDS)
            with self._ready:
                batch, self._queue = self._queue, []
                self._forget(batch)
                stopping = self._stopping
            failed = self.write(batch)
            if stopping:
                if failed:
                    self.logger.error(
                        "%d run outcome(s) could not be written at shutdown; their run records "
                        "stay 'started' until the scheduler is declared dead",
                        len(failed),
                    )
                return
            if failed:
                with self._ready:
                    self._queue[:0] = failed
                    for store, outcome in failed:
                        self._queued[(store, outcome.task_id)] += 1
                    # The store is failing: do not hammer it.
                    self._ready.wait(1.0)

    def write(self, batch: Sequence[tuple[str, RunOutcome]]) -> list[tuple[str, RunOutcome]]:
        """Write a batch, one call per store; returns what could not be written."""
        by_store: dict[str, list[RunOutcome]] = {}
        for store, outcome in batch:
            by_store.setdefault(store, []).append(outcome)
        failed: list[tuple[str, RunOutcome]] = []
        for store, outcomes in by_store.items():
            try:
                self.writers[store](outcomes)
            except Exception:
                self.logger.exception(
                    "Cannot write %d run outcome(s) to store %r; retrying", len(outcomes), store
                )
                failed.extend((store, outcome) for outcome in outcomes)
        return failed
