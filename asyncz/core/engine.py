"""The scheduler's lifecycle and the due-task pass.

Here: ``_LifecycleMixin`` with the state (``running``, ``pause``, ``resume``), starting the
components (executors, stores, then the tasks added before start; all or nothing), the pieces of
the shutdown sequence (shutdown tasks, executors with a timeout, stores), and the pass over the
stores: ``process_due`` takes each store's due tasks through the lease path
(``acquire_due_tasks`` then ``release_tasks``), ``_compute_runs`` gives their run times, and
``submit`` hands them to executors. The pass is tuned for speed: keep indirection out of it.

Not here: the event loop that calls the pass and the order of a shutdown
(:mod:`asyncz.core.asyncio_scheduler`), configuration (:mod:`asyncz.core.scheduler_config`),
the task API (:mod:`asyncz.core.task_api`).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

from asyncz.core import events
from asyncz.core.cluster import Heartbeat, RunRecorder
from asyncz.core.converters import now as current_time
from asyncz.core.converters import utc_timestamp_us
from asyncz.core.errors import MaximumInstancesError, SchedulerNotRunningError, TaskLookupError
from asyncz.core.execution import launches_after_step, run_task_sync
from asyncz.core.locks import NullLockProtected
from asyncz.core.protocols import Executor, Store
from asyncz.core.runs import Fire, FireResult
from asyncz.core.scheduler_common import (
    ACQUIRE_BATCH,
    LEASE_SECONDS,
    SHUTDOWN_TRIGGER_ALIAS,
    UTC,
    SchedulerState,
    _SchedulerCore,
)
from asyncz.core.task import Task

#: ``coalesced`` of a submission that reruns a run whose scheduler died (see ``submit``).
RERUN = -1


class _LifecycleMixin(_SchedulerCore):
    """State, start, the shutdown steps and the due-task pass (part of :class:`BaseScheduler`)."""

    # Fires whose fire_tasks failed and whose run records could not be read since, by store
    # alias, with their tasks: the next passes read them again (see _fired_anyway). And, while
    # there are any, the fire times this scheduler fired since, which are not theirs.
    _unresolved: dict[str, list[tuple[Fire, Task, int]]]
    _fired_since: set[tuple[str, str, int]]

    # -- state -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.state != SchedulerState.STOPPED

    def _require_running(self) -> None:
        if self.state == SchedulerState.STOPPED:
            raise SchedulerNotRunningError

    def pause(self) -> None:
        """Stop processing tasks until :meth:`resume` (running work carries on)."""
        self._require_running()
        self.state = SchedulerState.PAUSED
        self._dispatch(events.SchedulerEvent(code=events.SCHEDULER_PAUSED))

    def resume(self) -> None:
        """Process tasks again after :meth:`pause`."""
        self._require_running()
        self.state = SchedulerState.RUNNING
        self._dispatch(events.SchedulerEvent(code=events.SCHEDULER_RESUMED))
        self.wakeup()

    def wakeup(self, when: datetime | None = None) -> None:
        """Make the loop look at the stores again (if ``when`` is sooner than it would)."""

    # -- starting and stopping without an event loop ----------------------------------------

    def start(self, paused: bool = False) -> bool:
        """Start executors and stores, store the tasks added before; True for the call that
        started, False for a nested one (each start needs its shutdown).

        This scheduler runs no loop of its own: it calls :meth:`wakeup`, which a subclass
        overrides to arrange for :meth:`process_tasks` to be called. ``AsyncIOScheduler``
        is the one that drives itself.
        """
        with self._lock:
            if self._start_count:
                self._start_count += 1
                return False
            self._start_count = 1
            try:
                self._start_components()
            except BaseException:
                self._start_count = 0
                raise
            if paused:
                self.state = SchedulerState.PAUSED
        if not paused:
            self.wakeup()
        return True

    def shutdown(self, wait: bool = True) -> bool:
        """Undo one :meth:`start`; the last one stops executors (waiting for running work with
        ``wait``), runs the ``shutdown``-trigger tasks in this thread and closes the stores."""
        if not self._mark_stopped():
            return False
        self._shutdown_executors(wait, None)
        for task, alias in self._shutdown_tasks():
            run_task_sync(self, task, [current_time()], self.logger)
            self._finish_shutdown_task(task, alias)
        self._shutdown_stores()
        self.started_at = None
        self._shutdown_finished()
        return True

    def stop(self, wait: bool = True) -> bool:
        """The same as :meth:`shutdown` (the name the Asyncz task pages use)."""
        return self.shutdown(wait)

    def process_tasks(self) -> float | None:
        """One pass in this thread: submit the due runs of every store. Returns the seconds
        until a store needs looking at again, or None when no task is scheduled.

        ``AsyncIOScheduler`` runs passes by itself; a scheduler with a loop of its own calls
        this from it.
        """
        if self.state != SchedulerState.RUNNING:
            return None
        submissions, earliest, more = self.process_due(current_time())
        with launches_after_step():
            for task, alias, run_times, coalesced in submissions:
                self.submit(task, alias, run_times, coalesced)
        if more:
            return 0.0
        if earliest is None:
            return None
        return max((earliest - current_time()).total_seconds(), 0.0)

    # -- starting and stopping -------------------------------------------------------------

    def _start_components(self) -> None:
        """Start executors and stores and store the pending tasks; all or nothing started.

        If anything fails (a database that is down, a pending task naming a missing store),
        what was started is shut down again, the scheduler stays stopped and the tasks not yet
        stored stay pending, so that a later ``start()`` can try again.
        """
        started: list[Executor | Store] = []
        with self._lock:
            try:
                if "default" not in self._executors:
                    self.add_executor(self.create_default_executor(), "default")
                if "default" not in self._stores:
                    self.add_store(self.create_default_store(), "default")
                for alias, executor in self._executors.items():
                    executor.start(self, alias)
                    started.append(executor)
                for alias, store in self._stores.items():
                    store.start(self, alias)
                    started.append(store)
                    self._store_locks[alias] = self._make_store_lock(alias)
                self.state = SchedulerState.RUNNING
                self.started_at = current_time()
                self._store_pending(self.started_at + timedelta(seconds=self.startup_delay))
                self._start_cluster()
            except BaseException:
                self.state = SchedulerState.STOPPED
                self.started_at = None
                for component in reversed(started):
                    try:
                        component.shutdown()
                    except Exception:
                        self.logger.exception("Error undoing the start of %r", component)
                raise
        self.logger.info("Scheduler started")
        self._dispatch(events.SchedulerEvent(code=events.SCHEDULER_START))

    def _start_cluster(self) -> None:
        """Start the heartbeat and the run recorder, for the stores that have their parts."""
        stores = dict(self._stores)
        heartbeat = Heartbeat(
            self, stores, self.heartbeat_interval, self.heartbeat_dead_after, self._lease_length()
        )
        if heartbeat.needed:
            heartbeat.start()
            self._heartbeat = heartbeat
        recorder = RunRecorder(self, stores)
        if recorder.needed:
            recorder.start()
            self._run_recorder = recorder
            self._refresh_listener_mask()
        self._unresolved = {}
        self._fired_since = set()
        # Runs of schedulers that died while this one was down may be waiting.
        self._rerun_stores.update(
            alias for alias, store in stores.items() if hasattr(store, "take_reruns")
        )

    def _lease_length(self) -> float:
        """Seconds a lease lasts: LEASE_SECONDS, or, with a store whose leases the heartbeat
        renews, three heartbeats if that is longer (it must get to them in time)."""
        renewed = any(
            callable(getattr(store, "renew_leases", None)) for store in self._stores.values()
        )
        return max(LEASE_SECONDS, 3 * self.heartbeat_interval) if renewed else LEASE_SECONDS

    def _stop_cluster(self) -> None:
        """Write the outcomes still queued, then unregister (before the stores close)."""
        recorder, self._run_recorder = self._run_recorder, None
        if recorder is not None:
            self._refresh_listener_mask()
            recorder.stop()
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.stop()
        self._rerun_stores.clear()

    def _request_reruns(self, alias: str) -> None:
        """Have the next pass take the runs of dead schedulers waiting in store ``alias``."""
        self._rerun_stores.add(alias)

    def _shutdown_tasks(self) -> list[tuple[Task, str]]:
        """Tasks that run once at shutdown (shutdown trigger), with their store aliases."""
        found: list[tuple[Task, str]] = []
        with self._lock:
            stores = list(self._stores.items())
        for alias, store in stores:
            try:
                tasks = store.get_all_tasks()
            except Exception:
                self.logger.exception("Cannot read store %r for shutdown tasks", alias)
                continue
            found.extend(
                (task, alias)
                for task in tasks
                if getattr(task.trigger, "alias", None) == SHUTDOWN_TRIGGER_ALIAS
            )
        return found

    def _finish_shutdown_task(self, task: Task, alias: str) -> None:
        try:
            self.lookup_store(alias).delete_task(task.id)
        except (TaskLookupError, KeyError):
            return
        self._task_event(events.TASK_REMOVED, task.id, alias)

    def _shutdown_executors(self, wait: bool, timeout: float | None) -> None:
        """Shut every executor down; with a timeout, stop waiting for them after it."""
        with self._lock:
            executors = list(self._executors.items())
        if timeout is None:
            for _, executor in executors:
                executor.shutdown(wait)
            return
        deadline = time.monotonic() + timeout
        threads = []
        for alias, executor in executors:
            thread = threading.Thread(
                target=self._shutdown_one_executor,
                args=(alias, executor, wait),
                name=f"asyncz-shutdown-{alias}",
                daemon=True,
            )
            thread.start()
            threads.append((alias, thread))
        for alias, thread in threads:
            thread.join(max(deadline - time.monotonic(), 0))
            if thread.is_alive():
                self.logger.warning(
                    "Executor %r still has running work after the %.1f s shutdown timeout; "
                    "not waiting for it",
                    alias,
                    timeout,
                )

    def _shutdown_one_executor(self, alias: str, executor: Executor, wait: bool) -> None:
        try:
            executor.shutdown(wait)
        except BaseException:  # e.g. cancelled because the loop stopped after the timeout
            self.logger.debug("Executor %r did not shut down cleanly", alias, exc_info=True)

    def _shutdown_stores(self) -> None:
        try:
            self._stop_cluster()
        except Exception:
            self.logger.exception("Error leaving the cluster")
        with self._lock:
            stores = list(self._stores.items())
        for alias, store in stores:
            try:
                store.shutdown()
            except Exception:
                self.logger.exception("Error shutting down store %r", alias)

    def _mark_stopped(self) -> bool:
        """Count one shutdown; True when it is the one that stops the scheduler."""
        with self._lock:
            if not self._start_count:
                raise SchedulerNotRunningError
            if getattr(self, "_starting", False):  # (only the asyncio schedulers start slowly)
                raise SchedulerNotRunningError(
                    "The scheduler is still starting; shut it down once start() has returned."
                )
            self._start_count -= 1
            if self._start_count:
                return False
            self.state = SchedulerState.STOPPED
        return True

    def _shutdown_finished(self) -> None:
        self.logger.info("Scheduler has been shut down")
        self._dispatch(events.SchedulerEvent(code=events.SCHEDULER_SHUTDOWN))

    # -- the store pass --------------------------------------------------------------------

    def _compute_runs(
        self, task: Task, now: datetime, now_us: int | None = None
    ) -> tuple[list[datetime], datetime | None]:
        """The due run times of a task and its next run time after ``now`` (``now_us``: the
        same instant as :func:`utc_timestamp_us` gives it, when the caller has it already)."""
        trigger = task.trigger
        assert trigger is not None
        run_times: list[datetime] = []
        next_time = task.next_run_time
        if now_us is None:
            now_us = utc_timestamp_us(now)  # datetimes of one zone would compare ignoring fold
        while next_time is not None and utc_timestamp_us(next_time) <= now_us:
            run_times.append(next_time)
            next_time = trigger.get_next_trigger_time(self.timezone, next_time, now)
        return run_times, next_time

    def process_due(
        self, now: datetime
    ) -> tuple[list[tuple[Task, str, list[datetime], int]], datetime | None, bool]:
        """Acquire and release every store's due tasks; blocking store I/O happens here.

        Returns the submissions to make (task, store alias, run times, coalesced count), the
        earliest time any store needs attention again, and whether a store has more due tasks.
        A store that fails, or whose lock another process holds, is looked at again after
        ``store_retry_interval``.
        """
        submissions: list[tuple[Task, str, list[datetime], int]] = []
        earliest: datetime | None = None
        more = False
        retry_at = (now + timedelta(seconds=self.store_retry_interval)).astimezone(UTC)
        with self._lock:
            stores = [
                (alias, store, self._store_locks.get(alias) or NullLockProtected())
                for alias, store in self._stores.items()
            ]
        for alias, store, lock in stores:
            self._pass_started = time.monotonic()
            try:
                with lock.protected(blocking=False) as obtained:
                    if not obtained:  # another process works on this store now
                        next_time: datetime | None = retry_at
                    else:
                        with self._due_lock:
                            next_time, has_more = self._process_store(
                                alias, store, now, submissions
                            )
                        more = more or has_more
            except Exception:
                self.logger.exception("Error processing store %r", alias)
                next_time = retry_at
            finally:
                self._pass_started = None
            if next_time is not None:
                # In UTC: datetimes sharing a zone compare by wall time, ignoring DST's fold.
                next_time = next_time.astimezone(UTC)
                if earliest is None or next_time < earliest:
                    earliest = next_time
        return submissions, earliest, more

    def _process_store(
        self,
        alias: str,
        store: Store,
        now: datetime,
        submissions: list[tuple[Task, str, list[datetime], int]],
    ) -> tuple[datetime | None, bool]:
        """One store's part of a pass; raises if the store fails (the caller retries later)."""
        if alias in self._unresolved:
            self._resolve_fires(alias, submissions)
        acquired = store.acquire_due_tasks(now, self.identity, ACQUIRE_BATCH, self._lease_length())
        computed: dict[str, tuple[Task, list[datetime], datetime | None]] = {}
        now_us = utc_timestamp_us(now)
        for task in acquired:
            if getattr(task.trigger, "alias", None) == SHUTDOWN_TRIGGER_ALIAS:
                continue  # runs at shutdown only; never released, so never deleted here
            try:
                run_times, next_time = self._compute_runs(task, now, now_us)
            except Exception:
                # The lease runs out and the task is retried: it is never lost.
                self.logger.exception("Trigger of task %r failed", task.id)
                continue
            computed[task.id] = (task, run_times, next_time)
        fire = getattr(store, "fire_tasks", None)
        if fire is not None:
            self._fire(alias, fire, computed, submissions)
        else:
            # Released before the runs start, so that a crash in between loses a run rather
            # than running it twice. A failed release runs nothing: the leases run out and the
            # tasks are handed out again, once.
            released = store.release_tasks(
                self.identity, {task_id: entry[2] for task_id, entry in computed.items()}
            )
            # Only what was released runs: a task changed or deleted during the pass keeps the
            # user's change, and a run after delete_task() returned would be a surprise.
            for task_id in computed if released is None else released:
                task, run_times, next_time = computed[task_id]
                if next_time is None:
                    self._task_event(events.TASK_REMOVED, task_id, alias)
                if run_times:
                    coalesced = 0
                    if task.coalesce and len(run_times) > 1:
                        coalesced = len(run_times) - 1
                        run_times = run_times[-1:]
                    submissions.append((task, alias, run_times, coalesced))
        if alias in self._rerun_stores:
            self._take_reruns(alias, store, submissions)
        next_run = store.get_next_run_time()
        if next_run is not None and not acquired and next_run <= now:
            # Due, yet nothing was handed out (a task leased elsewhere, or a store without
            # lease expiry in its next run time): do not spin on it.
            next_run = now + timedelta(seconds=self.store_retry_interval)
        return next_run, len(acquired) >= ACQUIRE_BATCH

    def _fire(
        self,
        alias: str,
        fire: Any,
        computed: dict[str, tuple[Task, list[datetime], datetime | None]],
        submissions: list[tuple[Task, str, list[datetime], int]],
    ) -> None:
        """Release the computed tasks through a store with run records: their run records
        are written in the same transaction, and only the fire times the store recorded as
        started run (a fire time another scheduler recorded first never runs twice)."""
        fires: list[Fire] = []
        coalesced_counts: dict[str, int] = {}
        recorder = self._run_recorder
        for task_id, (task, run_times, next_time) in computed.items():
            coalesced = 0
            if task.coalesce and len(run_times) > 1:
                coalesced = len(run_times) - 1
                run_times = run_times[-1:]
            coalesced_counts[task_id] = coalesced
            fires.append(
                Fire(
                    task_id=task_id,
                    next_run_time=next_time,
                    run_times=run_times,
                    # Runs of this task that ended here still count as started in the store
                    # until their outcomes are written: allow for them.
                    max_instances=task.max_instances
                    + (recorder.queued(alias, task_id) if recorder is not None else 0),
                    on_crash=task.on_crash,
                )
            )
        if not fires:
            return
        try:
            results = fire(self.identity, fires)
        except Exception:
            # Committed or not? (A connection lost while the commit's answer was on its way.)
            # The run records say: what they hold as started by this scheduler was fired.
            self.logger.exception(
                "Firing %d task(s) in store %r failed; checking what was recorded",
                len(fires),
                alias,
            )
            read = self._fired_anyway(alias, fires)
            if read is None:
                self._unresolved.setdefault(alias, []).extend(
                    (item, computed[item.task_id][0], coalesced_counts[item.task_id])
                    for item in fires
                )
                results = {}
            else:
                results = read
        if self._unresolved:
            self._fired_since.update(
                (alias, task_id, utc_timestamp_us(t))
                for task_id, result in results.items()
                for t in result.started
            )
        if recorder is not None:
            recorder.fired(alias, ((task_id, r.started) for task_id, r in results.items()))
        for task_id, result in results.items():
            task, _, next_time = computed[task_id]
            if next_time is None:
                self._task_event(events.TASK_REMOVED, task_id, alias)
            if result.started:
                submissions.append((task, alias, list(result.started), coalesced_counts[task_id]))
            if result.skipped:
                self.logger.warning(
                    "Execution of task %r skipped: maximum number of running instances reached "
                    "across the schedulers sharing store %r (%d)",
                    task.name,
                    alias,
                    task.max_instances,
                )
                self._submission_event(
                    events.TASK_MAX_INSTANCES, task, alias, list(result.skipped), 0, "scheduled"
                )
            if result.duplicates:
                self.logger.warning(
                    "Fire time(s) %s of task %r were already fired by another scheduler; not "
                    "run again",
                    ", ".join(t.isoformat() for t in result.duplicates),
                    task.name,
                )

    def _fired_anyway(self, alias: str, fires: list[Fire]) -> dict[str, FireResult] | None:
        """After a failed ``fire_tasks``: the fires whose run records were written all the
        same (the commit went through), to be run. Those that were not stay leased until the
        lease runs out and are fired again then, once. ``None`` when the records cannot be
        read: a later pass reads them again (:meth:`_resolve_fires`)."""
        store = self.lookup_store(alias)
        found: dict[str, FireResult] = {}
        for attempt in range(3):
            try:
                for item in fires:
                    wanted = {utc_timestamp_us(t) for t in item.run_times}
                    if not wanted or item.task_id in found:
                        continue
                    records = store.get_runs(item.task_id, len(wanted) + 10)  # type: ignore[attr-defined]
                    started = [
                        r.scheduled_at
                        for r in records
                        if utc_timestamp_us(r.scheduled_at) in wanted
                        and r.instance == self.identity
                        and r.status == "started"
                        and r.attempt == 1
                    ]
                    if started:
                        found[item.task_id] = FireResult(task_id=item.task_id, started=started)
                return found
            except Exception:
                self.logger.warning(
                    "Reading the run records of store %r failed (attempt %d of 3)",
                    alias,
                    attempt + 1,
                    exc_info=True,
                )
                time.sleep(0.1 * (attempt + 1))
        self.logger.error(
            "Cannot tell yet which of %d fire(s) in store %r were recorded; the next passes "
            "read the run records again",
            len(fires),
            alias,
        )
        return None

    def _resolve_fires(
        self,
        alias: str,
        submissions: list[tuple[Task, str, list[datetime], int]],
    ) -> None:
        """Read again the run records of fires that failed while the store could not be read:
        the fire times recorded as started by this scheduler, and not fired by it again since
        (the lease ran out and a later pass fired them), are run now, late but once."""
        pending = self._unresolved.pop(alias, [])
        found = self._fired_anyway(alias, [item for item, _, _ in pending])
        if found is None:
            self._unresolved.setdefault(alias, []).extend(pending)
            return
        for item, task, coalesced in pending:
            result = found.get(item.task_id)
            if result is None:
                continue
            late = [
                t
                for t in result.started
                if (alias, item.task_id, utc_timestamp_us(t)) not in self._fired_since
            ]
            if late:
                submissions.append((task, alias, late, coalesced))
                if self._run_recorder is not None:
                    self._run_recorder.fired(alias, [(item.task_id, late)])
        if not self._unresolved:
            self._fired_since.clear()

    def _take_reruns(
        self,
        alias: str,
        store: Store,
        submissions: list[tuple[Task, str, list[datetime], int]],
    ) -> None:
        """Take the runs that schedulers declared dead left unfinished, for tasks whose
        ``on_crash`` is ``"rerun"``: each is handed to one scheduler, once."""
        self._rerun_stores.discard(alias)
        take = getattr(store, "take_reruns", None)
        if take is None:
            return
        try:
            reruns = take(self.identity, ACQUIRE_BATCH)
        except Exception:
            self._rerun_stores.add(alias)  # try again on a later pass
            raise
        for task, run_time in reruns:
            self.logger.warning(
                "Running task %r again for its fire time %s: the scheduler that ran it died",
                task.name,
                run_time.isoformat(),
            )
            submissions.append((task, alias, [run_time], RERUN))
            if self._run_recorder is not None:
                self._run_recorder.fired(alias, [(task.id, [run_time])])
        if len(reruns) >= ACQUIRE_BATCH:
            self._rerun_stores.add(alias)

    def submit(self, task: Task, store: str, run_times: list[datetime], coalesced: int) -> None:
        """Hand one task's due run times to its executor and report the outcome.

        ``coalesced`` is the number of run times coalesced away, or :data:`RERUN` for the
        rerun of a run whose scheduler died."""
        source = "scheduled"
        if coalesced == RERUN:
            source, coalesced = "rerun", 0
        recorder = self._run_recorder
        try:
            executor = self._executors[task.executor]
        except KeyError:
            self.logger.error(
                "Task %r names the executor %r, which does not exist; run skipped",
                task.id,
                task.executor,
            )
            if recorder is not None:
                recorder.record(
                    store,
                    task.id,
                    run_times,
                    "failed",
                    f"the executor {task.executor!r} does not exist",
                )
            return
        try:
            executor.send_task(task, run_times)
        except MaximumInstancesError:
            self.logger.warning(
                "Execution of task %r skipped: maximum number of running instances reached (%d)",
                task.name,
                task.max_instances,
            )
            code = events.TASK_MAX_INSTANCES
            if recorder is not None:
                recorder.record(store, task.id, run_times, "skipped")
        except Exception as exc:
            self.logger.exception(
                "Error submitting task %r to executor %r", task.name, task.executor
            )
            if recorder is not None:
                recorder.record(store, task.id, run_times, "failed", f"{type(exc).__name__}: {exc}")
            return
        else:
            code = events.TASK_SUBMITTED
            self._submitted_count += 1
        self._submission_event(code, task, store, run_times, coalesced, source)
