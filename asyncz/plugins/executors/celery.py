"""The ``celery`` executor: each run becomes a Celery task message, run by a Celery worker fleet.

asyncz decides *when*; the fleet the team already runs does the *work*. A run is sent as one
message for the generic task that :mod:`asyncz.plugins.executors.celery_worker` installs in the
workers' app: the callable travels by its ``"module:qualname"`` reference, args and kwargs with
the app's serializer (JSON unless configured otherwise). The run id is the Celery task id, so a
run can be followed from the scheduler's events to the worker's log line
``Task asyncz.run[<run id>] received``.

How outcomes come back: through the app's result backend, never by polling each run. With the
Redis backend (pub/sub) and the RPC backend (a reply queue) the worker pushes each state change:
the generic task stores ``STARTED`` (with its host, process and start time) as it begins, then
the outcome. Other backends are read every ``poll_interval``; a persistent backend (Redis, SQL)
is also read back every ``poll_interval`` for a run that has been quiet that long, so a
message lost by a pub/sub reconnect is not a run lost. A result backend is required.

All broker and backend I/O happens in one thread per executor (the *courier*), never on the
scheduler's event loop. What is reported:

* ``TASK_SUBMITTED`` is the scheduler's, as for every executor: the executor took the run. The
  broker's answer comes next: a broker that cannot be reached, or refuses the message, makes the
  run a ``TASK_ERROR`` with :class:`BrokerUnavailable` (or the encoding error) saying why.
* ``TASK_STARTED`` when the worker reports the start; ``TASK_EXECUTED`` (the return value, as
  the serializer brought it back: a tuple comes back a list under JSON) or ``TASK_ERROR`` (the
  worker's exception and traceback) when it reports the end; the duration is the worker's own.
* A task's ``timeout`` becomes the message's soft time limit (the hard limit is
  ``timeout_grace`` later); the worker reports a run over its limit as ``TimeoutError``. If the
  fleet says nothing ``timeout_grace`` after the limit, the run is reported as timed out here,
  stops counting against ``max_instances``, and a later outcome is logged and discarded.
* A worker that stops answering (checked with Celery's ``ping`` every
  ``worker_check_interval`` seconds, only while it holds a run): after ``worker_lost_after``
  seconds without an answer its runs are reported as ``TASK_ERROR`` with :class:`WorkerLost`
  when the worker acknowledges messages early (Celery's default: the message is gone), or
  logged as redelivered and followed to their new worker under ``acks_late``.
* ``max_instances`` counts runs in flight on the fleet, from the hand-over to the outcome.

Not here: the worker side (:mod:`asyncz.plugins.executors.celery_worker`). Celery is imported
when an executor starts, not when this module is imported.
"""

from __future__ import annotations

import collections
import functools
import threading
import time
import traceback
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from asyncz.core import events
from asyncz.core.converters import obj_to_ref, ref_to_obj
from asyncz.core.execution import BaseExecutor, RunReporter
from asyncz.core.hookspecs import hookimpl
from asyncz.core.task import Task
from asyncz.plugins.executors._fleet import (
    FleetRun,
    Submission,
    let_go,
    positive_seconds,
    shut_down,
)

__all__ = ["DEFAULT_TASK_NAME", "BrokerUnavailable", "CeleryExecutor", "WorkerLost"]

UTC = timezone.utc
#: the name of the generic task the workers run (see ``celery_worker.install``)
DEFAULT_TASK_NAME = "asyncz.run"
#: at most this many result messages are read between two looks at new runs to send
_DRAIN_BATCH = 2000


class BrokerUnavailable(ConnectionError):
    """The broker (or the result backend) did not take a run's message; the run never left."""


class WorkerLost(RuntimeError):
    """The worker running a run stopped answering; its message was already acknowledged, so
    nothing will run it again (Celery's default ``acks_late=False``)."""


def _reference(fn: Any) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """The reference a worker imports ``fn`` by, plus arguments a partial binds."""
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    while isinstance(fn, functools.partial):
        args = fn.args + args
        kwargs = {**fn.keywords, **kwargs}
        fn = fn.func
    if isinstance(fn, str):
        return fn, args, kwargs
    return obj_to_ref(fn), args, kwargs


@functools.cache
def _sent_result_class() -> type:
    """Celery's ``AsyncResult``, without what it does when garbage-collected: cancel the
    consumer of its result (for the RPC backend, of the reply queue every run shares). The
    courier follows each run itself and drops the object at once."""
    from celery.result import AsyncResult  # type: ignore[import-untyped]

    class SentResult(AsyncResult):  # type: ignore[misc]
        def __del__(self) -> None:
            pass

    return SentResult


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


class CeleryExecutor(BaseExecutor):
    """Sends each run to a Celery worker fleet as a message for the generic asyncz task.

    :param app: the Celery app (or its ``"module:attr"`` reference) whose broker, result
        backend and serializer are used; the workers' app must have the generic task installed
        (:func:`asyncz.plugins.executors.celery_worker.install`). Or leave it out and give
        ``broker_url`` and ``result_backend`` for an app made here.
    :param broker_url: the broker, when no ``app`` is given (e.g. ``"amqp://guest@host//"``)
    :param result_backend: the result backend, when no ``app`` is given (e.g. ``"rpc://"``,
        ``"redis://host/0"``); a backend is required: outcomes come back through it
    :param queue: the queue to send to (default: the app's routing for the task name)
    :param routing_key: the routing key (default: the app's)
    :param exchange: the exchange (default: the app's)
    :param priority: the message priority, if the broker supports it
    :param serializer: the message serializer (default: the app's ``task_serializer``, JSON)
    :param task_name: the generic task's name (default ``"asyncz.run"``)
    :param acks_late: whether the workers acknowledge messages after running them (default:
        the app's ``task_acks_late``); decides what a lost worker means for its runs
    :param timeout_grace: seconds added to a task's ``timeout`` for the hard time limit and
        for hearing the outcome before the run is reported as timed out here (default 1)
    :param worker_check_interval: seconds between pings of the workers holding runs (default 5)
    :param worker_lost_after: seconds a worker holding a run may leave pings unanswered before
        it is taken for lost (default 30). A worker with the ``solo`` pool does not answer
        while it runs a task: give it more than the longest run, or use ``prefork``.
    :param poll_interval: seconds between reads of the backend for quiet runs (default 2)
    :param send_options: more ``send_task`` options for every message (e.g. ``expires``)
    """

    def __init__(
        self,
        app: Any = None,
        *,
        broker_url: str | None = None,
        result_backend: str | None = None,
        queue: str | None = None,
        routing_key: str | None = None,
        exchange: str | None = None,
        priority: int | None = None,
        serializer: str | None = None,
        task_name: str = DEFAULT_TASK_NAME,
        acks_late: bool | None = None,
        timeout_grace: float = 1.0,
        worker_check_interval: float = 5.0,
        worker_lost_after: float = 30.0,
        poll_interval: float = 2.0,
        send_options: Mapping[str, Any] | None = None,
    ) -> None:
        if app is not None and (broker_url is not None or result_backend is not None):
            raise TypeError("give either app, or broker_url and result_backend, not both")
        if app is None and broker_url is None:
            raise TypeError(
                "the celery executor needs the Celery app to send to (app=...), or "
                "broker_url=... and result_backend=..."
            )
        if not isinstance(task_name, str) or not task_name:
            raise ValueError(f"task_name must be a non-empty string, got {task_name!r}")
        if acks_late is not None and not isinstance(acks_late, bool):
            raise TypeError(f"acks_late must be True, False or None, got {acks_late!r}")
        if send_options is not None and not isinstance(send_options, Mapping):
            raise TypeError(f"send_options must be a mapping, got {send_options!r}")
        super().__init__()
        self._app_given = app
        self.broker_url = broker_url
        self.result_backend = result_backend
        self.task_name = task_name
        self.acks_late = acks_late
        self.timeout_grace = positive_seconds("timeout_grace", timeout_grace)
        self.worker_check_interval = positive_seconds(
            "worker_check_interval", worker_check_interval
        )
        self.worker_lost_after = positive_seconds("worker_lost_after", worker_lost_after)
        self.poll_interval = positive_seconds("poll_interval", poll_interval)
        options: dict[str, Any] = dict(send_options or {})
        for name, value in (
            ("queue", queue),
            ("routing_key", routing_key),
            ("exchange", exchange),
            ("priority", priority),
            ("serializer", serializer),
        ):
            if value is not None:
                options[name] = value
        self.send_options = options
        self.app: Any = None
        self._courier: _Courier | None = None

    def _resolve_app(self) -> Any:
        app = self._app_given
        if isinstance(app, str):
            app = ref_to_obj(app)
        if app is None:
            from celery import Celery  # type: ignore[import-untyped]

            app = Celery("asyncz", broker=self.broker_url, backend=self.result_backend)
        if not callable(getattr(app, "send_task", None)):
            raise TypeError(f"app must be a Celery app, got {app!r}")
        backend = app.conf.result_backend
        if not backend or str(backend).startswith("disabled"):
            raise ValueError(
                "the celery executor needs a result backend to learn the outcome of each run: "
                'configure the app\'s result_backend (e.g. "rpc://" or "redis://...")'
            )
        return app

    def start(self, scheduler: Any, alias: str) -> None:
        if self.app is None:
            self.app = self._resolve_app()
        if self._courier is not None:
            self._courier.stop(wait=True)
        super().start(scheduler, alias)
        acks_late = self.acks_late
        if acks_late is None:
            acks_late = bool(self.app.conf.task_acks_late)
        self._courier = _Courier(self, acks_late)

    def launch(self, task: Task, run_times: Sequence[datetime]) -> None:
        courier = self._courier
        if courier is None:
            raise RuntimeError(f"the executor {self.alias!r} is shut down")
        courier.submit(Submission(task, run_times, RunReporter(self.scheduler, task, self.logger)))

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting work. With ``wait``, return once every run sent has its outcome
        (or timed out); without it, report runs not sent yet as not run and stop listening
        (runs already on the fleet carry on there, unreported: their run ids are logged).

        Safe on the scheduler's event-loop thread: the courier never needs that loop.
        """
        shut_down(self, wait, "the executor was shut down before they were sent")

    @property
    def in_flight(self) -> list[str]:
        """The run ids sent and not yet reported (for monitoring and tests)."""
        courier = self._courier
        return [] if courier is None else courier.in_flight()


class _Courier:
    """The one thread that talks to the broker and the result backend for an executor."""

    def __init__(self, executor: CeleryExecutor, acks_late: bool) -> None:
        self.executor = executor
        self.app = executor.app
        self.logger = executor.logger
        self.acks_late = acks_late
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.inbox: collections.deque[Submission] = collections.deque()
        self.runs: dict[str, FleetRun] = {}
        self.stopping = False
        self.abandon = False
        self.lost_hosts: collections.deque[str] = collections.deque()
        self.seen = 0
        self.backend: Any = None
        self.consumer: Any = None
        self.per_run_subscription = False
        self.next_poll = time.monotonic() + executor.poll_interval
        self.watch: _Watch | None = None
        self.thread = threading.Thread(
            target=self._main, name=f"asyncz-{executor.alias}-courier", daemon=True
        )
        self.thread.start()

    # -- from other threads ----------------------------------------------------------------

    def submit(self, submission: Submission) -> None:
        with self.lock:
            if self.stopping:
                raise RuntimeError(f"the executor {self.executor.alias!r} is shut down")
            self.inbox.append(submission)
            self.wake.notify()

    def stop(self, wait: bool) -> None:
        with self.lock:
            self.stopping = True
            self.abandon = not wait
            self.wake.notify()
        if threading.current_thread() is not self.thread:
            self.thread.join(None if wait else 10)

    def host_lost(self, host: str) -> None:
        with self.lock:
            self.lost_hosts.append(host)

    def in_flight(self) -> list[str]:
        with self.lock:
            return list(self.runs)

    def hosts_holding_runs(self) -> set[str]:
        with self.lock:
            return {run.host for run in self.runs.values() if run.host is not None}

    # -- the courier's thread --------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._loop()
        except BaseException:
            self.logger.exception("The Celery courier of %r stopped", self.executor.alias)
            self._fail_everything("the executor's courier thread failed (see the log)")
        finally:
            self._close()

    def _loop(self) -> None:
        while True:
            with self.lock:
                if not self.inbox and not self.runs and not self.lost_hosts:
                    if self.stopping:
                        return
                    self.wake.wait(1.0)
                    continue
                if self.stopping and self.abandon:
                    return
                batch = list(self.inbox)
                self.inbox.clear()
            if batch:
                self._send_batch(batch)
            if self.runs:
                self._drain(0.0 if self.inbox else 0.02)
            self._housekeeping()

    def _connect_backend(self) -> None:
        # app.backend is one instance per thread (unless result_backend_thread_safe): this
        # thread's own, so hooking its result consumer touches nobody else's waits.
        backend = self.app.backend
        self.backend = backend
        consumer = getattr(backend, "result_consumer", None)
        if getattr(backend, "is_async", False) and consumer is not None:
            consumer.on_message = self._on_meta
            self.consumer = consumer
            # The RPC backend has one reply queue for every run: never cancel it per run.
            self.per_run_subscription = type(backend).__name__ != "RPCBackend"

    def _send_batch(self, batch: list[Submission]) -> None:
        if self.backend is None:
            try:
                self._connect_backend()
            except Exception as exc:
                for submission in batch:
                    self._fail_submission(submission, exc, "the result backend is unusable")
                return
        broken: BaseException | None = None
        with self.app.producer_or_acquire() as producer:
            for submission in batch:
                broken = self._send_next(submission, producer, broken)

    def _send_next(
        self, submission: Submission, producer: Any, broken: BaseException | None
    ) -> BaseException | None:
        """Send the submission's next run (reporting missed ones first); return the broker
        error that made this pass give up on the broker, if any."""
        reporter = submission.reporter
        task = submission.task
        while submission.index < len(submission.run_times):
            run_time = submission.run_times[submission.index]
            if reporter.missed(run_time):
                submission.index += 1
                continue
            break
        else:
            self.executor.run_finished(task.id)
            return broken
        run_id = str(uuid.uuid4())  # Celery's own task ids look the same
        run = FleetRun(run_id, submission, run_time)
        if broken is not None:
            error: BaseException = BrokerUnavailable(
                f"run {run_id} of task {task.name or task.id!r} was not sent: the broker "
                f"failed just before in the same pass ({broken})"
            )
            self._report_failed(run, error, f"{type(error).__name__}: {error}\n")
            return broken
        try:
            if submission.reference is None:
                submission.reference = _reference(task.fn)
            reference, bound_args, bound_kwargs = submission.reference
            args = [*bound_args, *task.args]
            kwargs = {**bound_kwargs, **task.kwargs}
        except Exception as exc:
            self._report_failed(
                run,
                TypeError(f"the task's callable cannot be sent to a Celery worker: {exc}"),
                None,
            )
            return broken
        options = dict(self.executor.send_options)
        timeout = task.timeout
        if timeout is not None:
            options["soft_time_limit"] = timeout
            options["time_limit"] = timeout + self.executor.timeout_grace
        meta = {"task": task.name or task.id, "task_id": task.id, "timeout": timeout}
        with self.lock:
            self.runs[run_id] = run
        try:
            if self.consumer is not None:
                # Listen before sending: the outcome may come back at once. (The Redis backend
                # subscribes to the run's channel here; the RPC backend starts consuming its
                # reply queue, which Celery otherwise leaves to the first result.get().)
                self.consumer.consume_from(run_id)
            self.app.send_task(
                self.executor.task_name,
                result_cls=_sent_result_class(),
                args=(reference, args, kwargs, meta),
                task_id=run_id,
                producer=producer,
                add_to_parent=False,
                **options,
            )
        except Exception as exc:
            with self.lock:
                self.runs.pop(run_id, None)
            connection_errors = self._connection_errors()
            if isinstance(exc, connection_errors):
                error = BrokerUnavailable(
                    f"run {run_id} of task {task.name or task.id!r} was not sent: the broker "
                    f"did not take it ({type(exc).__name__}: {exc})"
                )
                error.__cause__ = exc
                self._report_failed(run, error, f"{type(error).__name__}: {error}\n")
                return exc
            self._report_failed(run, exc, None)
        return broken

    def _connection_errors(self) -> tuple[type[BaseException], ...]:
        from kombu.exceptions import OperationalError

        errors: tuple[type[BaseException], ...] = (OperationalError, ConnectionError, OSError)
        try:
            import redis.exceptions

            errors += (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        except ImportError:
            pass
        return errors

    def _drain(self, timeout: float) -> None:
        consumer = self.consumer
        if consumer is None:
            if timeout:
                with self.lock:
                    self.wake.wait(timeout)
            return
        for _ in range(_DRAIN_BATCH):
            before = self.seen
            try:
                consumer.drain_events(timeout=timeout)
            except TimeoutError:  # socket.timeout too
                return
            except Exception as exc:
                self.logger.warning("Reading results from the backend failed: %r", exc)
                time.sleep(min(timeout, 0.1) or 0.01)
                return
            if self.seen == before:
                return
            timeout = 0.0

    def _on_meta(self, meta: Mapping[str, Any]) -> None:
        """A state change of a run, as the backend delivered it (on this thread)."""
        self.seen += 1
        run_id = meta.get("task_id")
        if not isinstance(run_id, str):
            return
        with self.lock:
            run = self.runs.get(run_id)
        if run is None:
            self._late(run_id, meta)
            return
        run.heard = time.monotonic()
        status = meta.get("status")
        if status == "STARTED":
            self._started(run, meta.get("result"))
        elif status == "SUCCESS":
            self._finished(run, meta, ok=True)
        elif status in ("FAILURE", "REVOKED"):
            self._finished(run, meta, ok=False)
        if status in ("SUCCESS", "FAILURE", "REVOKED"):
            self._forget(run_id)

    def _unsubscribe(self, run_id: str) -> None:
        """Stop listening for a run given up on (timed out, lost, not sent)."""
        if self.consumer is not None and self.per_run_subscription:
            try:
                self.consumer.cancel_for(run_id)
            except Exception as exc:
                self.logger.debug("Could not stop listening for run %s: %r", run_id, exc)

    def _forget(self, run_id: str) -> None:
        # Celery's consumer keeps outcomes nobody waits on for a while: ours are handled.
        buffered = getattr(self.backend, "_pending_messages", None)
        if buffered is None:
            return
        try:
            kept = buffered.pop(run_id, None)
            if kept is not None:
                buffered.total -= len(kept)
        except Exception:  # another Celery version keeps them otherwise
            pass

    def _started(self, run: FleetRun, info: Any) -> None:
        info = info if isinstance(info, Mapping) else {}
        host = info.get("hostname")
        if run.started_at is not None:
            # Delivered again after its worker was lost (acks_late): follow the new worker.
            if isinstance(host, str):
                run.host = host
            return
        run.started_at = _parse_time(info.get("started_at")) or datetime.now(UTC)
        run.start = time.perf_counter()
        run.host = host if isinstance(host, str) else None
        timeout = run.submission.task.timeout
        if timeout is not None:
            run.deadline = time.monotonic() + timeout + self.executor.timeout_grace
        run.submission.reporter.emit(
            events.TASK_STARTED, run.run_time, run_id=run.run_id, started_at=run.started_at
        )
        if run.host is not None:
            self._ensure_watch()

    def _finished(self, run: FleetRun, meta: Mapping[str, Any], ok: bool) -> None:
        with self.lock:
            if self.runs.pop(run.run_id, None) is None:
                return
        reporter = run.submission.reporter
        if run.started_at is None:
            if not ok and meta.get("status") == "REVOKED":
                reporter.not_run([run.run_time], f"run {run.run_id} was revoked before it started")
                self._advance(run.submission)
                return
            # The start was not heard (a backend read back): report it now, in order.
            self._started(run, {})
        done = _parse_time(meta.get("date_done"))
        duration: float | None = None
        if done is not None and run.started_at is not None:
            duration = max(0.0, (done - run.started_at).total_seconds())
        start = time.perf_counter() - duration if duration is not None else run.start
        try:
            if ok:
                reporter.executed(run.run_time, run.run_id, run.started_at, start, meta["result"])
            else:
                exc = self._exception(meta)
                formatted = meta.get("traceback")
                if not isinstance(formatted, str) or not formatted:
                    formatted = f"{type(exc).__name__}: {exc}\n"
                formatted += f"(raised in Celery worker {run.host or 'unknown'})\n"
                reporter.failed(run.run_time, run.run_id, run.started_at, start, exc, formatted)
        finally:
            self._advance(run.submission)

    def _exception(self, meta: Mapping[str, Any]) -> BaseException:
        result = meta.get("result")
        if isinstance(result, BaseException):
            exc = result
        else:
            try:
                exc = self.backend.exception_to_python(result)
            except Exception as error:
                exc = RuntimeError(f"the worker reported an error that cannot be read: {error}")
            if not isinstance(exc, BaseException):
                exc = RuntimeError(f"the worker reported an error: {result!r}")
        if meta.get("status") == "REVOKED" and not isinstance(exc, BaseException):
            exc = RuntimeError("the run was revoked")
        # Celery's own time-limit errors say the same as our TimeoutError.
        if type(exc).__name__ in ("TimeLimitExceeded", "SoftTimeLimitExceeded"):
            exc = TimeoutError(f"{type(exc).__name__}: {exc} (Celery's time limit)")
        return exc

    def _report_failed(self, run: FleetRun, exc: BaseException, formatted: str | None) -> None:
        with self.lock:
            self.runs.pop(run.run_id, None)
        self._unsubscribe(run.run_id)
        try:
            if formatted is None:
                formatted = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            run.submission.reporter.failed(
                run.run_time, run.run_id, run.started_at, run.start, exc, formatted
            )
        finally:
            self._advance(run.submission)

    def _advance(self, submission: Submission) -> None:
        """The submission's current run is over: send the next one, or uncount it."""
        submission.index += 1
        if submission.index >= len(submission.run_times):
            self.executor.run_finished(submission.task.id)
            return
        with self.lock:
            if self.abandon:
                self.executor.run_finished(submission.task.id)
                return
            self.inbox.append(submission)

    def _late(self, run_id: str, meta: Mapping[str, Any]) -> None:
        status = meta.get("status")
        if status in ("SUCCESS", "FAILURE", "REVOKED"):
            self._forget(run_id)
            self.logger.debug("Outcome %s of run %s came after it was reported", status, run_id)

    # -- timeouts, lost workers, quiet runs ------------------------------------------------

    def _housekeeping(self) -> None:
        now = time.monotonic()
        with self.lock:
            runs = list(self.runs.values())
            lost = set(self.lost_hosts)
            self.lost_hosts.clear()
        for run in runs:
            if run.deadline is not None and now >= run.deadline:
                self._timed_out(run)
        if lost:
            self._drain(0.0)  # an outcome already on its way wins over a verdict
            for run in runs:
                if run.host in lost and run.run_id in self.runs:
                    self._worker_lost(run)
        if now >= self.next_poll:
            self.next_poll = now + self.executor.poll_interval
            self._poll_quiet(runs, now)

    def _timed_out(self, run: FleetRun) -> None:
        task = run.submission.task
        limit = self.executor.timeout_grace
        exc = TimeoutError(
            f"run {run.run_id} of task {task.name or task.id!r} exceeded its timeout of "
            f"{task.timeout:g} s; no outcome from the fleet {limit:g} s after it (the worker "
            "was told to stop it with Celery's time limit); a later outcome is discarded"
        )
        self._report_failed(run, exc, f"TimeoutError: {exc}\n")

    def _worker_lost(self, run: FleetRun) -> None:
        task = run.submission.task
        if self.acks_late:
            self.logger.warning(
                "Celery worker %s stopped answering while it ran run %s of task %r; with "
                "acks_late the broker delivers it again, to be followed on its next worker",
                run.host,
                run.run_id,
                task.name,
            )
            run.host = None
            return
        exc = WorkerLost(
            f"the Celery worker {run.host} running run {run.run_id} of task "
            f"{task.name or task.id!r} stopped answering for "
            f"{self.executor.worker_lost_after:g} s; its message was acknowledged when the run "
            "started (acks_late is off), so nothing will run it again"
        )
        self._report_failed(run, exc, f"WorkerLost: {exc}\n")

    def _poll_quiet(self, runs: list[FleetRun], now: float) -> None:
        """Read back runs not heard from in a while, from a backend that keeps results."""
        backend = self.backend
        if backend is None or (self.consumer is not None and not backend.persistent):
            return
        if self.consumer is not None and type(backend).__name__ == "RPCBackend":
            return
        quiet = [r for r in runs if now - r.heard >= self.executor.poll_interval]
        for run in quiet:
            if run.run_id not in self.runs:
                continue
            try:
                meta = dict(backend.get_task_meta(run.run_id))
            except Exception as exc:
                self.logger.warning("Reading run %s from the backend failed: %r", run.run_id, exc)
                return
            run.heard = now
            status = meta.get("status")
            if status == "PENDING":
                continue
            meta["task_id"] = run.run_id
            if status == "STARTED" and run.started_at is not None:
                continue
            self._on_meta(meta)

    def _ensure_watch(self) -> None:
        if self.watch is None:
            self.watch = _Watch(self)

    # -- the end -----------------------------------------------------------------------------

    def _fail_submission(self, submission: Submission, exc: BaseException, why: str) -> None:
        task = submission.task
        run = FleetRun("", submission, submission.run_times[submission.index])
        run.run_id = str(uuid.uuid4())
        error = BrokerUnavailable(
            f"run {run.run_id} of task {task.name or task.id!r} was not sent: {why} "
            f"({type(exc).__name__}: {exc})"
        )
        self._report_failed(run, error, f"{type(error).__name__}: {error}\n")

    def _fail_everything(self, why: str) -> None:
        with self.lock:
            runs = list(self.runs.values())
            self.runs.clear()
            inbox = list(self.inbox)
            self.inbox.clear()
        for run in runs:
            submission = run.submission
            try:
                submission.reporter.failed(
                    run.run_time,
                    run.run_id,
                    run.started_at,
                    run.start,
                    RuntimeError(why),
                    f"RuntimeError: {why}\n",
                )
            finally:
                self.executor.run_finished(submission.task.id)
        for submission in inbox:
            try:
                submission.reporter.not_run(submission.run_times[submission.index :], why)
            finally:
                self.executor.run_finished(submission.task.id)

    def _close(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        with self.lock:
            runs = list(self.runs.values())
            self.runs.clear()
            inbox = list(self.inbox)
            self.inbox.clear()
        let_go(self.executor, self.logger, "Celery fleet", runs, inbox)
        consumer = self.consumer
        if consumer is not None:
            consumer.on_message = None
            try:
                consumer.stop()
            except Exception:  # never started, or already closed
                pass


class _Watch:
    """Pings the workers that hold runs; tells the courier about the ones gone silent."""

    def __init__(self, courier: _Courier) -> None:
        self.courier = courier
        self.stopped = threading.Event()
        self.thread = threading.Thread(
            target=self._main, name=f"{courier.thread.name}-watch", daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def _main(self) -> None:
        courier = self.courier
        executor = courier.executor
        interval = executor.worker_check_interval
        answered: dict[str, float] = {}
        while not self.stopped.wait(interval):
            hosts = courier.hosts_holding_runs()
            now = time.monotonic()
            for host in hosts:
                answered.setdefault(host, now)  # first seen: the clock starts now
            for host in list(answered):
                if host not in hosts:
                    del answered[host]
            if not hosts:
                continue
            try:
                replies = courier.app.control.ping(
                    destination=sorted(hosts), timeout=min(interval, 1.0)
                )
            except Exception as exc:
                courier.logger.warning("Pinging the Celery workers failed: %r", exc)
                continue
            now = time.monotonic()
            for reply in replies or ():
                for host in reply:
                    answered[host] = now
            for host in hosts:
                if now - answered[host] >= executor.worker_lost_after:
                    answered.pop(host, None)
                    courier.host_lost(host)


@hookimpl
def asyncz_register_executors(register: Any) -> None:
    register("celery", CeleryExecutor)
