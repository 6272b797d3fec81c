"""The ``dask`` executor: each run is submitted to a Dask cluster (``dask.distributed``).

asyncz decides *when*; a Dask cluster does the work. A run is a future of a small wrapper around
the task's callable (shipped the way Dask ships functions, by pickle), keyed by the run id so it
can be found on the cluster's dashboard. On its worker the wrapper announces the start (a
``log_event`` the executor subscribes to), runs the callable (a coroutine function's coroutine
to completion on a fresh event loop, cancelled at the task's ``timeout``) and returns the outcome
with the worker's own start time and duration; the future's completion reports it.

Events, as for every executor: ``TASK_STARTED`` when the worker starts the run, then
``TASK_EXECUTED`` or ``TASK_ERROR`` (the exception raised on the worker, or Dask's own, such as
``KilledWorker`` once a run's workers died too often). Dask cannot stop a running function: a
run with no outcome ``timeout_grace`` seconds past its ``timeout`` is reported as timed out,
stops counting against ``max_instances``, and its late outcome is discarded. ``max_instances``
counts runs in flight on the cluster.

All client calls happen in one thread per executor, never on the scheduler's event loop; the
client connects in that thread when the first run is sent. Dask is imported then, not when this
module is imported.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import pickle
import threading
import time
import traceback
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from asyncz.core import events
from asyncz.core.execution import (
    BaseExecutor,
    RunReporter,
    await_with_timeout,
    new_run_id,
    strip_traceback,
)
from asyncz.core.hookspecs import hookimpl
from asyncz.core.task import Task
from asyncz.plugins.executors._fleet import (
    FleetRun,
    Submission,
    let_go,
    positive_seconds,
    shut_down,
)

__all__ = ["DaskExecutor"]

UTC = timezone.utc


def run_on_worker(
    fn: Any,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    run_id: str,
    topic: str,
    timeout: float | None,
    task_name: str,
) -> tuple[bool, Any, str | None, datetime, float, str | None]:
    """What a Dask worker runs for one run: ``(ok, value or exception, formatted traceback,
    started_at, duration, worker address)``."""
    started_at = datetime.now(UTC)
    address = None
    try:
        from distributed import get_worker

        worker = get_worker()
        address = worker.address
        worker.log_event(
            topic, {"run_id": run_id, "started_at": started_at.isoformat(), "worker": address}
        )
    except Exception:  # not on a worker (a client-side test), or no event log: no notice
        pass
    start = time.perf_counter()

    def message(what: str) -> str:
        return f"run {run_id} of task {task_name!r} exceeded its timeout of {timeout:g} s; {what}"

    try:
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            text = message("cancelled") if timeout is not None else ""
            result = asyncio.run(_await(await_with_timeout(result, timeout, text)))
        if timeout is not None and time.perf_counter() - start > timeout:
            raise TimeoutError(message("it ran to completion"))
    except Exception as exc:
        formatted = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        strip_traceback(exc)
        try:
            pickle.dumps(exc)
            error: BaseException = exc
        except Exception:
            error = RuntimeError(f"{type(exc).__name__}: {exc} (the exception does not pickle)")
        return False, error, formatted, started_at, time.perf_counter() - start, address
    return True, result, None, started_at, time.perf_counter() - start, address


async def _await(awaitable: Any) -> Any:
    return await awaitable


class DaskExecutor(BaseExecutor):
    """Submits each run to a Dask cluster.

    :param address: the scheduler's address (``"tcp://host:8786"``) or a cluster object
        (``LocalCluster()``) for a client made and closed by this executor
    :param client: a ``distributed.Client`` to use instead (left open at shutdown)
    :param client_kwargs: more options for the client made from ``address``
    :param submit_options: more ``Client.submit`` options for every run (``resources``,
        ``workers``, ``priority``, ``retries``...)
    :param timeout_grace: seconds past a task's ``timeout`` to wait for the outcome before the
        run is reported as timed out here (default 1)
    """

    def __init__(
        self,
        address: Any = None,
        *,
        client: Any = None,
        client_kwargs: Mapping[str, Any] | None = None,
        submit_options: Mapping[str, Any] | None = None,
        timeout_grace: float = 1.0,
    ) -> None:
        if (address is None) == (client is None):
            raise TypeError(
                "the dask executor needs the cluster to submit to: address=... (a scheduler "
                "address or a cluster object) or client=... (a distributed.Client)"
            )
        for name, value in (("client_kwargs", client_kwargs), ("submit_options", submit_options)):
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f"{name} must be a mapping, got {value!r}")
        super().__init__()
        self.address = address
        self.client = client
        self.client_kwargs = dict(client_kwargs or {})
        self.submit_options = dict(submit_options or {})
        self.timeout_grace = positive_seconds("timeout_grace", timeout_grace)
        self._courier: _Courier | None = None

    def start(self, scheduler: Any, alias: str) -> None:
        if self._courier is not None:
            self._courier.stop(wait=True)
        super().start(scheduler, alias)
        self._courier = _Courier(self)

    def launch(self, task: Task, run_times: Sequence[datetime]) -> None:
        courier = self._courier
        if courier is None:
            raise RuntimeError(f"the executor {self.alias!r} is shut down")
        courier.post(
            "send", Submission(task, run_times, RunReporter(self.scheduler, task, self.logger))
        )

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting work. With ``wait``, return once every run submitted has its outcome
        (or timed out); without it, report runs not submitted yet as not run and let go of
        the others (their run ids are logged)."""
        shut_down(self, wait, "the executor was shut down before they were submitted")


class _Courier:
    """The one thread that talks to the Dask client for an executor, and reports."""

    def __init__(self, executor: DaskExecutor) -> None:
        self.executor = executor
        self.logger = executor.logger
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.inbox: collections.deque[tuple[str, Any]] = collections.deque()
        self.runs: dict[str, FleetRun] = {}
        self.stopping = False
        self.abandon = False
        self.client: Any = executor.client
        self.own_client = False
        self.topic = f"asyncz-started-{uuid.uuid4().hex}"
        self.thread = threading.Thread(
            target=self._main, name=f"asyncz-{executor.alias}-dask", daemon=True
        )
        self.thread.start()

    def post(self, kind: str, item: Any) -> None:
        with self.lock:
            if kind == "send" and self.stopping:
                raise RuntimeError(f"the executor {self.executor.alias!r} is shut down")
            self.inbox.append((kind, item))
            self.wake.notify()

    def stop(self, wait: bool) -> None:
        with self.lock:
            self.stopping = True
            self.abandon = not wait
            self.wake.notify()
        if threading.current_thread() is not self.thread:
            self.thread.join(None if wait else 10)

    def _main(self) -> None:
        try:
            self._loop()
        except BaseException:
            self.logger.exception("The Dask courier of %r stopped", self.executor.alias)
        finally:
            self._close()

    def _loop(self) -> None:
        while True:
            with self.lock:
                while not self.inbox:
                    if self.stopping and (self.abandon or not self.runs):
                        return
                    self.wake.wait(self._wait_time())
                    if not self.inbox:
                        break
                items = list(self.inbox)
                self.inbox.clear()
            for kind, item in items:
                if kind == "send":
                    self._send_next(item)
                elif kind == "started":
                    self._on_started(item)
                elif kind == "done":
                    self._on_done(*item)
            self._check_deadlines()

    def _wait_time(self) -> float:
        deadlines = [r.deadline for r in self.runs.values() if r.deadline is not None]
        if not deadlines:
            return 1.0
        return max(0.0, min(deadlines) - time.monotonic())

    def _connect(self) -> None:
        if self.client is None:
            from distributed import Client

            options = {"set_as_default": False, **self.executor.client_kwargs}
            self.client = Client(self.executor.address, **options)  # type: ignore[no-untyped-call]
            self.own_client = True
        self.client.subscribe_topic(self.topic, self._notice)

    def _notice(self, event: Any) -> None:
        # On the client's event loop: hand over, report from the courier's thread.
        message = event[1] if isinstance(event, tuple) and len(event) == 2 else event
        if isinstance(message, Mapping):
            self.post("started", message)

    def _send_next(self, submission: Submission) -> None:
        reporter = submission.reporter
        task = submission.task
        while submission.index < len(submission.run_times):
            if not reporter.missed(submission.run_times[submission.index]):
                break
            submission.index += 1
        else:
            self.executor.run_finished(task.id)
            return
        run = FleetRun(new_run_id(), submission, submission.run_times[submission.index])
        try:
            if self.client is None or (self.own_client and self.client.status == "closed"):
                self._connect()
            run.future = self.client.submit(
                run_on_worker,
                task.fn,
                tuple(task.args),
                dict(task.kwargs),
                run.run_id,
                self.topic,
                task.timeout,
                task.name or task.id,
                key=run.run_id,
                pure=False,
                **self.executor.submit_options,
            )
        except Exception as exc:
            if self.own_client and self.client is not None and self.client.status != "running":
                self.client = None  # connect again for the next run
            error = ConnectionError(
                f"run {run.run_id} of task {task.name or task.id!r} was not submitted to the "
                f"Dask cluster: {type(exc).__name__}: {exc}"
            )
            self._report_failed(run, error)
            return
        with self.lock:
            self.runs[run.run_id] = run
        run.future.add_done_callback(
            lambda future, run_id=run.run_id: self.post("done", (run_id, future))
        )

    def _on_started(self, message: Mapping[str, Any]) -> None:
        run = self.runs.get(str(message.get("run_id")))
        if run is None or run.started_at is not None:
            return  # finished already, or started again on another worker after a death
        started_at = None
        text = message.get("started_at")
        if isinstance(text, str):
            try:
                started_at = datetime.fromisoformat(text)
            except ValueError:
                pass
        self._started(run, started_at or datetime.now(UTC))

    def _started(self, run: FleetRun, started_at: datetime) -> None:
        run.started_at = started_at
        run.start = time.perf_counter()
        timeout = run.submission.task.timeout
        if timeout is not None:
            run.deadline = time.monotonic() + timeout + self.executor.timeout_grace
        run.submission.reporter.emit(
            events.TASK_STARTED, run.run_time, run_id=run.run_id, started_at=started_at
        )

    def _on_done(self, run_id: str, future: Any) -> None:
        with self.lock:
            run = self.runs.pop(run_id, None)
        if run is None:
            self.logger.debug("Outcome of run %s came after it was reported", run_id)
            return
        reporter = run.submission.reporter
        try:
            status = future.status
            if status == "finished":
                ok, value, formatted, started_at, duration, address = future.result()
                if run.started_at is None:
                    self._started(run, started_at)
                start = time.perf_counter() - duration
                if ok:
                    reporter.executed(run.run_time, run_id, run.started_at, start, value)
                else:
                    formatted = f"{formatted}(raised on Dask worker {address})\n"
                    reporter.failed(run.run_time, run_id, run.started_at, start, value, formatted)
                return
            if status == "error":
                exc = future.exception()
                text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            else:
                exc = RuntimeError(f"the run's Dask future ended as {status!r}")
                text = f"RuntimeError: {exc}\n"
            if run.started_at is None:
                self._started(run, datetime.now(UTC))
            reporter.failed(run.run_time, run_id, run.started_at, run.start, exc, text)
        finally:
            run.future = None
            self._advance(run.submission)

    def _report_failed(self, run: FleetRun, exc: BaseException) -> None:
        with self.lock:
            self.runs.pop(run.run_id, None)
        future, run.future = run.future, None
        if future is not None:
            try:
                future.cancel()  # not running yet: never runs; running: Dask cannot stop it
            except Exception as error:
                self.logger.debug("Could not cancel run %s: %r", run.run_id, error)
        try:
            run.submission.reporter.failed(
                run.run_time,
                run.run_id,
                run.started_at,
                run.start,
                exc,
                f"{type(exc).__name__}: {exc}\n",
            )
        finally:
            self._advance(run.submission)

    def _advance(self, submission: Submission) -> None:
        submission.index += 1
        if submission.index >= len(submission.run_times) or self.abandon:
            self.executor.run_finished(submission.task.id)
            return
        self._send_next(submission)

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        with self.lock:
            due = [r for r in self.runs.values() if r.deadline is not None and now >= r.deadline]
        for run in due:
            task = run.submission.task
            self._report_failed(
                run,
                TimeoutError(
                    f"run {run.run_id} of task {task.name or task.id!r} exceeded its timeout "
                    f"of {task.timeout:g} s; Dask cannot stop a running function, so its "
                    "outcome will be discarded"
                ),
            )

    def _close(self) -> None:
        with self.lock:
            runs = list(self.runs.values())
            self.runs.clear()
            pending = [item for kind, item in self.inbox if kind == "send"]
            self.inbox.clear()
        let_go(self.executor, self.logger, "Dask cluster", runs, pending)
        client = self.client
        if client is None:
            return
        try:
            client.unsubscribe_topic(self.topic)
        except Exception as exc:
            self.logger.debug("Could not unsubscribe from %s: %r", self.topic, exc)
        if self.own_client:
            try:
                client.close()
            except Exception as exc:
                self.logger.debug("Closing the Dask client failed: %r", exc)


@hookimpl
def asyncz_register_executors(register: Any) -> None:
    register("dask", DaskExecutor)
