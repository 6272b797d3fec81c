"""The dashboard's storages: captured logs, run history, observed events, the audit trail.

Real schedulers run real tasks (the debug executor on an asyncio scheduler, a thread pool on a
scheduler driven by hand); waits are bounded by an event or a deadline, never asserted on.
Concurrency is forced with barriers so every thread appends at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncz.contrib.dashboard.audit import (
    AUDIT_ACTIONS,
    AuditRecord,
    MemoryAuditTrailStorage,
    get_audit_storage,
)
from asyncz.contrib.dashboard.events import (
    EVENT_NAMES,
    MemorySchedulerEventStorage,
    SchedulerEventRecord,
    attach_event_recorder,
    event_label,
    event_name,
    get_scheduler_event_storage,
)
from asyncz.contrib.dashboard.history import (
    MemoryRunHistoryStorage,
    RunHistoryRecord,
    StoreRunHistory,
    attach_run_history,
    detach_run_history,
)
from asyncz.contrib.dashboard.logs.handler import (
    TaskLogHandler,
    get_task_logger,
    install_task_log_handler,
    uninstall_task_log_handler,
)
from asyncz.contrib.dashboard.logs.storage import LogEntry, MemoryLogStorage, get_log_storage
from asyncz.core import events
from asyncz.core.base_scheduler import BaseScheduler
from asyncz.executors.debug import DebugExecutor
from asyncz.executors.pool import ThreadPoolExecutor
from asyncz.schedulers.asyncio import AsyncIOScheduler

UTC = timezone.utc
WAIT = 10.0  # an upper bound for a run to report, never an expectation


def noop() -> str:
    return "ok"


def boom() -> None:
    raise RuntimeError("history boom")


class Payload:
    """A return value the event storage must not keep."""


def returns_object() -> Payload:
    return Payload()


def hammer(threads: int, action: Callable[[int], object]) -> None:
    """Run ``action(i)`` in ``threads`` threads released together by a barrier."""
    barrier = threading.Barrier(threads, timeout=WAIT)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            action(index)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT)
    assert not errors, errors
    assert not any(worker.is_alive() for worker in workers)


def wait_until(condition: Callable[[], Any], step: Callable[[], Any] | None = None) -> Any:
    deadline = time.monotonic() + WAIT
    while True:
        if step is not None:
            step()
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.01)


def later() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)


class Outcomes:
    """A listener keeping the run events of a scheduler; ``done`` is set at each outcome."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.done = threading.Semaphore(0)

    def __call__(self, event: Any) -> None:
        self.events.append(event)
        if event.code & (events.TASK_EXECUTED | events.TASK_ERROR | events.TASK_MISSED):
            self.done.release()

    def wait(self, count: int = 1) -> None:
        for _ in range(count):
            assert self.done.acquire(timeout=WAIT), "the run did not report"

    def run_ids(self, code: int) -> list[str]:
        return [e.run_id for e in self.events if e.code == code]


def listen(scheduler: Any) -> Outcomes:
    outcomes = Outcomes()
    scheduler.add_listener(
        outcomes,
        events.TASK_STARTED | events.TASK_EXECUTED | events.TASK_ERROR | events.TASK_MISSED,
    )
    return outcomes


@pytest.fixture
def asyncio_scheduler() -> Iterator[AsyncIOScheduler]:
    scheduler = AsyncIOScheduler(executors={"default": DebugExecutor()}, timezone="UTC")
    scheduler.start(paused=True)
    try:
        yield scheduler
    finally:
        scheduler.shutdown()


@pytest.fixture
def pool_scheduler() -> Iterator[BaseScheduler]:
    """A scheduler without a loop of its own (the test drives its passes) on a thread pool."""
    scheduler = BaseScheduler(
        identity="pool-scheduler", timezone="UTC", executors={"default": ThreadPoolExecutor()}
    )
    scheduler.start(paused=True)
    try:
        yield scheduler
    finally:
        scheduler.shutdown()


@pytest.fixture
def logging_restored() -> Iterator[None]:
    namespace = logging.getLogger("asyncz")
    level = namespace.level
    yield
    uninstall_task_log_handler()
    namespace.setLevel(level)


# -- log storage -------------------------------------------------------------------------------


def entry(message: str, **fields: Any) -> LogEntry:
    level = fields.pop("level", "INFO")
    return LogEntry(
        message=message, level=level, levelno=logging.getLevelName(level), logger="t", **fields
    )


def test_log_storage_is_bounded_and_newest_first() -> None:
    storage = MemoryLogStorage(maxlen=3)
    for i in range(5):
        storage.append(entry(f"m{i}"))
    assert len(storage) == 3
    assert [e.message for e in storage.query()] == ["m4", "m3", "m2"]
    assert [e.message for e in storage.query(limit=2)] == ["m4", "m3"]
    storage.clear()
    assert storage.query() == []


def test_log_storage_filters() -> None:
    storage = MemoryLogStorage()
    start = datetime.now(UTC)
    storage.append(entry("index built", task_id="a", run_id="r1"))
    storage.append(entry("Latency spike", level="WARNING", task_id="a", run_id="r2"))
    storage.append(entry("boom failure", level="ERROR", task_id="b", scheduler_identity="node-7"))
    assert [e.message for e in storage.query(task_id="a")] == ["Latency spike", "index built"]
    assert [e.message for e in storage.query(run_id="r1")] == ["index built"]
    assert [e.message for e in storage.query(level="ERROR")] == ["boom failure"]
    assert [e.message for e in storage.query(level="warning")] == ["Latency spike"]
    assert [e.message for e in storage.query(q="LATENCY")] == ["Latency spike"]
    assert [e.message for e in storage.query(q="node-7")] == ["boom failure"]
    assert [e.message for e in storage.query(level="INFO", q="index")] == ["index built"]
    assert storage.query(level="INFO", q="boom") == []
    assert len(storage.query(task_id="", level="", q="")) == 3
    assert storage.query(until=start - timedelta(seconds=1)) == []
    assert len(storage.query(since=start)) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"level": "LOUD"}, "unknown log level 'LOUD'; use one of DEBUG, INFO"),
        ({"limit": 0}, "limit must be a positive integer, got 0"),
    ],
)
def test_log_storage_rejects_bad_queries(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MemoryLogStorage().query(**kwargs)


def test_log_entry_keeps_plain_data_only() -> None:
    big = "x" * 5000
    kept = entry("m", extra={"n": 1, "obj": Payload(), "big": big})
    assert kept.extra["n"] == 1
    assert isinstance(kept.extra["obj"], str) and "Payload" in kept.extra["obj"]
    assert len(kept.extra["big"]) < len(big)


def test_log_storage_concurrent_appends() -> None:
    storage = MemoryLogStorage(maxlen=100_000)

    def fill(target: MemoryLogStorage, i: int) -> None:
        for n in range(500):
            target.append(entry(f"{i}-{n}"))

    hammer(8, lambda i: fill(storage, i))
    assert len(storage) == 8 * 500
    assert len({e.message for e in storage.query(limit=100_000)}) == 8 * 500
    small = MemoryLogStorage(maxlen=50)
    hammer(8, lambda i: fill(small, i))
    assert len(small) == 50


def test_default_log_storage_is_replaceable() -> None:
    before = get_log_storage()
    try:
        assert get_log_storage() is before
        custom = MemoryLogStorage(maxlen=5)
        assert get_log_storage(custom) is custom
        assert get_log_storage() is custom
        with pytest.raises(TypeError, match="append"):
            get_log_storage(object())  # type: ignore[arg-type]
    finally:
        get_log_storage(before)


# -- log handler -------------------------------------------------------------------------------


def our_handlers(logger: logging.Logger) -> list[logging.Handler]:
    return [h for h in logger.handlers if isinstance(h, TaskLogHandler)]


def test_install_is_idempotent_and_follows_the_latest_storage(logging_restored: None) -> None:
    first, second = MemoryLogStorage(), MemoryLogStorage()
    for _ in range(5):
        install_task_log_handler(first)
    install_task_log_handler(second)
    assert len(our_handlers(logging.getLogger("asyncz"))) == 1
    assert len(our_handlers(logging.getLogger())) == 1
    get_task_logger("t1").info("hello")
    assert first.query() == []
    [row] = second.query()
    assert (row.message, row.task_id, row.logger, row.level) == (
        "hello",
        "t1",
        "asyncz.tasks",
        "INFO",
    )


def test_handler_captures_the_namespace_and_tagged_records(logging_restored: None) -> None:
    storage = MemoryLogStorage()
    install_task_log_handler(storage)
    logging.getLogger("asyncz.custom").info("namespace", extra={"job_id": "j1"})
    logging.getLogger("asyncz.custom").warning("untagged namespace")
    app = logging.getLogger("tests.app.storages")
    app.warning("app tagged", extra={"asyncz_task_id": "t2", "run_id": "r9", "size": 3})
    app.warning("app untagged")
    try:
        raise ValueError("bad value")
    except ValueError:
        app.exception("app failed", extra={"task_id": "t3"})
    rows = {row.message.splitlines()[0]: row for row in storage.query()}
    assert set(rows) == {"namespace", "untagged namespace", "app tagged", "app failed"}
    assert rows["namespace"].task_id == "j1"
    assert rows["untagged namespace"].task_id is None
    assert (rows["app tagged"].task_id, rows["app tagged"].run_id) == ("t2", "r9")
    assert rows["app tagged"].extra == {"size": 3}
    assert "ValueError: bad value" in rows["app failed"].message
    # each record once, though both handlers see the namespace's records
    assert len([row for row in storage.query() if row.logger == "asyncz.custom"]) == 2


def test_handler_does_not_recurse_through_a_logging_storage(logging_restored: None) -> None:
    class Chatty(MemoryLogStorage):
        def append(self, entry: LogEntry) -> None:
            logging.getLogger("asyncz.storage").warning("appending %s", entry.message)
            super().append(entry)

    storage = Chatty()
    install_task_log_handler(storage)
    get_task_logger("t").info("once")
    assert [e.message for e in storage.query()] == ["once"]


def test_task_logger_binds_task_and_run(logging_restored: None) -> None:
    storage = MemoryLogStorage()
    install_task_log_handler(storage)
    get_task_logger("t", run_id="r1").info("bound")
    get_task_logger("t").info("given wins", extra={"run_id": "r2"})
    assert [(e.task_id, e.run_id) for e in storage.query()] == [("t", "r2"), ("t", "r1")]
    with pytest.raises(TypeError, match="non-empty string"):
        get_task_logger("")


def test_install_leaves_a_configured_level_alone(logging_restored: None) -> None:
    namespace = logging.getLogger("asyncz")
    namespace.setLevel(logging.ERROR)
    storage = MemoryLogStorage()
    install_task_log_handler(storage)
    assert namespace.level == logging.ERROR
    get_task_logger("t").info("filtered by the application's level")
    assert storage.query() == []


# -- run history: real runs --------------------------------------------------------------------


def test_manual_run_is_one_record_under_the_core_run_id(
    asyncio_scheduler: AsyncIOScheduler,
) -> None:
    history, logs = MemoryRunHistoryStorage(maxlen=100), MemoryLogStorage()
    outcomes = listen(asyncio_scheduler)
    attach_run_history(asyncio_scheduler, history, logs)
    attach_run_history(asyncio_scheduler, history, logs)  # once, however often
    asyncio_scheduler.add_task(noop, "date", id="t", name="Manual", run_at=later())
    asyncio_scheduler.run_task("t", remove_finished=False)
    outcomes.wait()
    [record] = history.query()
    [run_id] = outcomes.run_ids(events.TASK_EXECUTED)
    assert record.run_id == run_id
    assert (record.task_id, record.task_name, record.source, record.status) == (
        "t",
        "Manual",
        "manual",
        "succeeded",
    )
    assert record.callable == f"{__name__}:noop"
    assert record.store == "default" and record.executor == "default"
    assert record.scheduler_identity == asyncio_scheduler.identity
    assert record.submitted_at is not None and record.started_at is not None
    assert record.finished_at is not None and record.duration is not None
    assert record.exception is None
    assert history.get(run_id) == record
    assert history.latest_for_task("t") == record
    assert history.query(q=asyncio_scheduler.identity) == [record]
    [log] = logs.query(run_id=run_id)
    assert (log.message, log.task_id, log.scheduler_identity) == (
        "Task run succeeded",
        "t",
        asyncio_scheduler.identity,
    )


def test_failed_run_keeps_the_exception_as_text(asyncio_scheduler: AsyncIOScheduler) -> None:
    history, logs = MemoryRunHistoryStorage(), MemoryLogStorage()
    outcomes = listen(asyncio_scheduler)
    attach_run_history(asyncio_scheduler, history, logs)
    asyncio_scheduler.add_task(boom, "date", id="bad", run_at=later())
    asyncio_scheduler.run_task("bad", remove_finished=False)
    outcomes.wait()
    record = history.latest_for_task("bad")
    assert record is not None and record.status == "failed"
    assert (record.exception_type, record.exception_message) == ("RuntimeError", "history boom")
    assert record.exception is not None and "Traceback" in record.exception
    assert "history boom" in record.exception
    assert history.query(status="failed") == [record]
    assert history.query(status="succeeded") == []
    [log] = logs.query(run_id=record.run_id)
    assert log.message == "Task run failed: RuntimeError: history boom"
    assert log.level == "ERROR"


def test_scheduled_and_manual_runs_on_a_thread_pool(pool_scheduler: BaseScheduler) -> None:
    history, logs = MemoryRunHistoryStorage(), MemoryLogStorage()
    outcomes = listen(pool_scheduler)
    attach_run_history(pool_scheduler, history, logs)
    due = datetime.now(UTC) - timedelta(seconds=1)
    pool_scheduler.add_task(noop, "date", id="due", run_at=due)
    pool_scheduler.add_task(noop, "date", id="later", run_at=later())
    pool_scheduler.resume()
    pool_scheduler.process_tasks()
    outcomes.wait()
    pool_scheduler.run_task("later", remove_finished=False)
    outcomes.wait()
    scheduled = history.latest_for_task("due")
    manual = history.latest_for_task("later")
    assert scheduled is not None and manual is not None
    assert (scheduled.source, scheduled.status) == ("scheduled", "succeeded")
    assert (manual.source, manual.status) == ("manual", "succeeded")
    assert scheduled.scheduled_run_time == due
    assert {scheduled.run_id, manual.run_id} == set(outcomes.run_ids(events.TASK_EXECUTED))
    assert len(history) == 2
    assert history.query(source="manual") == [manual]
    assert {e.run_id for e in logs.query()} == {scheduled.run_id, manual.run_id}


def test_each_run_time_of_a_submission_is_its_own_record(pool_scheduler: BaseScheduler) -> None:
    history = MemoryRunHistoryStorage()
    outcomes = listen(pool_scheduler)
    attach_run_history(pool_scheduler, history)
    start = datetime.now(UTC) - timedelta(seconds=2.5)
    pool_scheduler.add_task(noop, "interval", seconds=1, start_at=start, id="many", coalesce=False)
    pool_scheduler.update_task("many", next_run_time=start)  # three run times are due
    pool_scheduler.run_task("many")
    outcomes.wait(3)
    records = history.query(task_id="many")
    assert len(records) == 3
    assert {r.run_id for r in records} == set(outcomes.run_ids(events.TASK_EXECUTED))
    assert sorted(r.scheduled_run_time for r in records if r.scheduled_run_time) == [
        start + timedelta(seconds=n) for n in range(3)
    ]
    assert all(r.status == "succeeded" and r.coalesced_run_count == 0 for r in records)


def test_coalesced_runs_are_counted(pool_scheduler: BaseScheduler) -> None:
    history = MemoryRunHistoryStorage()
    outcomes = listen(pool_scheduler)
    attach_run_history(pool_scheduler, history)
    start = datetime.now(UTC) - timedelta(seconds=2.5)
    pool_scheduler.add_task(noop, "interval", seconds=1, start_at=start, id="c", coalesce=True)
    pool_scheduler.update_task("c", next_run_time=start)  # three run times are due
    pool_scheduler.run_task("c")
    outcomes.wait()
    [record] = history.query(task_id="c")
    assert record.coalesced_run_count == 2
    assert record.scheduled_run_time == start + timedelta(seconds=2)
    assert record.status == "succeeded"


# -- run history: correlation, from events -----------------------------------------------------


def submission(task_id: str, *run_times: datetime, **fields: Any) -> events.TaskSubmissionEvent:
    return events.TaskSubmissionEvent(
        code=fields.pop("code", events.TASK_SUBMITTED),
        task_id=task_id,
        store="default",
        scheduler_identity=fields.pop("scheduler_identity", "node-1"),
        scheduled_run_times=list(run_times),
        **fields,
    )


def execution(
    code: int, task_id: str, run_time: datetime, **fields: Any
) -> events.TaskExecutionEvent:
    return events.TaskExecutionEvent(
        code=code,
        task_id=task_id,
        store="default",
        scheduler_identity=fields.pop("scheduler_identity", "node-1"),
        scheduled_run_time=run_time,
        **fields,
    )


def test_a_submission_without_a_run_keeps_a_stable_id() -> None:
    history, logs = MemoryRunHistoryStorage(), MemoryLogStorage()
    run_time = datetime.now(UTC)
    [made] = history.record_submission(
        submission("c", run_time, coalesced_run_count=2, source="scheduled"), log_storage=logs
    )
    assert made.status == "submitted" and made.coalesced_run_count == 2
    assert made.run_id
    assert history.latest_for_task("c") == made
    assert history.get(made.run_id) == made
    assert history.latest_for_task("c").run_id == made.run_id  # type: ignore[union-attr]
    assert logs.query() == []  # nothing happened yet


def test_the_run_takes_over_its_submission_record() -> None:
    history, logs = MemoryRunHistoryStorage(), MemoryLogStorage()
    run_time = datetime.now(UTC)
    [made] = history.record_submission(submission("t", run_time, source="manual"))
    started = datetime.now(UTC)
    running = history.record_execution(
        execution(events.TASK_STARTED, "t", run_time, run_id="core-1", started_at=started)
    )
    assert (running.run_id, running.status, running.source) == ("core-1", "running", "manual")
    assert history.get(made.run_id) is None
    done = history.record_execution(
        execution(
            events.TASK_EXECUTED,
            "t",
            run_time,
            run_id="core-1",
            started_at=started,
            duration=0.5,
            return_value=Payload(),
        ),
        log_storage=logs,
    )
    assert done.status == "succeeded" and done.finished_at == started + timedelta(seconds=0.5)
    assert len(history) == 1 and history.get("core-1") == done
    assert [(e.message, e.run_id) for e in logs.query()] == [("Task run succeeded", "core-1")]


def test_runs_reported_before_their_submission_are_merged() -> None:
    history = MemoryRunHistoryStorage()
    run_time = datetime.now(UTC)
    history.record_execution(execution(events.TASK_STARTED, "t", run_time, run_id="early"))
    history.record_execution(execution(events.TASK_EXECUTED, "t", run_time, run_id="early"))
    assert history.get("early").source == "unknown"  # type: ignore[union-attr]
    history.record_submission(submission("t", run_time, source="manual", coalesced_run_count=1))
    [record] = history.query()
    assert (record.run_id, record.status, record.source, record.coalesced_run_count) == (
        "early",
        "succeeded",
        "manual",
        1,
    )


def test_same_task_and_time_on_two_schedulers_are_two_runs() -> None:
    history = MemoryRunHistoryStorage()
    run_time = datetime.now(UTC)
    history.record_submission(submission("t", run_time, scheduler_identity="a"))
    history.record_submission(submission("t", run_time, scheduler_identity="b"))
    history.record_execution(
        execution(events.TASK_STARTED, "t", run_time, run_id="run-b", scheduler_identity="b")
    )
    by_identity = {r.scheduler_identity: r for r in history.query()}
    assert by_identity["b"].run_id == "run-b" and by_identity["b"].status == "running"
    assert by_identity["a"].status == "submitted"


def test_missed_and_turned_away_runs() -> None:
    history, logs = MemoryRunHistoryStorage(), MemoryLogStorage()
    run_time = datetime.now(UTC)
    [made] = history.record_submission(submission("m", run_time))
    missed = history.record_execution(
        execution(events.TASK_MISSED, "m", run_time), log_storage=logs
    )
    assert (missed.run_id, missed.status) == (made.run_id, "missed")
    assert missed.finished
    [away] = history.record_submission(
        submission("x", run_time, code=events.TASK_MAX_INSTANCES), log_storage=logs
    )
    assert away.status == "max_instances" and away.finished_at is not None
    assert {(e.run_id, e.level) for e in logs.query()} == {
        (made.run_id, "WARNING"),
        (away.run_id, "WARNING"),
    }
    # a later event for the same time does not take over a turned-away record
    history.record_execution(execution(events.TASK_STARTED, "x", run_time, run_id="other"))
    assert history.get(away.run_id).status == "max_instances"  # type: ignore[union-attr]


def test_a_final_status_is_not_undone() -> None:
    history = MemoryRunHistoryStorage()
    run_time = datetime.now(UTC)
    history.record_execution(execution(events.TASK_EXECUTED, "t", run_time, run_id="r"))
    late = history.record_execution(execution(events.TASK_STARTED, "t", run_time, run_id="r"))
    assert late.status == "succeeded"


def test_history_is_bounded_and_forgets_evicted_submissions() -> None:
    history = MemoryRunHistoryStorage(maxlen=3)
    base = datetime.now(UTC)
    made = [
        history.record_submission(submission("t", base + timedelta(seconds=n)))[0] for n in range(5)
    ]
    assert [r.run_id for r in history.query()] == [r.run_id for r in reversed(made[2:])]
    # the run of an evicted submission gets a record of its own
    record = history.record_execution(execution(events.TASK_STARTED, "t", base, run_id="late"))
    assert record.source == "unknown"
    assert len(history) == 3
    assert history.get(made[0].run_id) is None


def test_history_concurrent_recording() -> None:
    history = MemoryRunHistoryStorage(maxlen=100_000)
    base = datetime.now(UTC)

    def work(i: int) -> None:
        for n in range(200):
            run_time = base + timedelta(microseconds=i * 1000 + n)
            history.record_submission(submission(f"t{i}", run_time))
            history.record_execution(
                execution(events.TASK_STARTED, f"t{i}", run_time, run_id=f"{i}-{n}")
            )
            history.record_execution(
                execution(events.TASK_EXECUTED, f"t{i}", run_time, run_id=f"{i}-{n}")
            )

    hammer(8, work)
    records = history.query(limit=100_000)
    assert len(records) == 8 * 200
    assert all(r.status == "succeeded" and r.source == "scheduled" for r in records)
    assert {r.run_id for r in records} == {f"{i}-{n}" for i in range(8) for n in range(200)}


def test_history_rejects_bad_input() -> None:
    history = MemoryRunHistoryStorage()
    with pytest.raises(ValueError, match="unknown run status 'done'; use one of submitted"):
        history.query(status="done")
    with pytest.raises(ValueError, match="record_submission takes TASK_SUBMITTED"):
        history.record_submission(execution(events.TASK_STARTED, "t", datetime.now(UTC)))
    with pytest.raises(ValueError, match="record_execution takes TASK_STARTED"):
        history.record_execution(submission("t", datetime.now(UTC)))
    with pytest.raises(ValueError, match="maxlen must be a positive integer"):
        MemoryRunHistoryStorage(maxlen=0)


def test_waiting_for_the_runs_of_a_manual_run(asyncio_scheduler: AsyncIOScheduler) -> None:
    history = MemoryRunHistoryStorage()
    attach_run_history(asyncio_scheduler, history)
    asyncio_scheduler.add_task(noop, "date", id="old", run_at=later())
    asyncio_scheduler.run_task("old", remove_finished=False)
    asyncio_scheduler.add_task(noop, "date", id="t", run_at=later())
    mark = history.watermark()
    asyncio_scheduler.run_task("t", remove_finished=False)
    [record] = history.wait_for_runs("t", since=mark, timeout=WAIT)
    assert record.status == "succeeded"
    # nothing after the mark: returns at the timeout with nothing
    assert history.wait_for_runs("old", since=history.watermark(), timeout=0.01) == []

    mark = history.watermark()
    asyncio_scheduler.run_task("t", remove_finished=False)
    runs = asyncio.run(history.wait_for_runs_async("t", since=mark, timeout=WAIT))
    assert [r.status for r in runs] == ["succeeded"] and runs[0].run_id != record.run_id


def test_detach_stops_recording(asyncio_scheduler: AsyncIOScheduler) -> None:
    history = MemoryRunHistoryStorage()
    attach_run_history(asyncio_scheduler, history)
    assert detach_run_history(asyncio_scheduler, history)
    assert not detach_run_history(asyncio_scheduler, history)
    outcomes = listen(asyncio_scheduler)
    asyncio_scheduler.add_task(noop, "date", id="t", run_at=later())
    asyncio_scheduler.run_task("t", remove_finished=False)
    outcomes.wait()
    assert history.query() == []


# -- run history from a store's run records ----------------------------------------------------


def test_store_history_shows_runs_of_another_scheduler(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    dashboard = BaseScheduler(
        identity="dashboard", timezone="UTC", stores={"default": {"type": "sqlalchemy", "url": url}}
    )
    worker = BaseScheduler(
        identity="worker",
        timezone="UTC",
        stores={"default": {"type": "sqlalchemy", "url": url}},
        executors={"default": ThreadPoolExecutor()},
    )
    dashboard.start(paused=True)
    worker.start()
    try:
        outcomes = listen(worker)
        due = datetime.now(UTC) - timedelta(seconds=1)
        worker.add_task(noop, "date", id="good", name="Good", run_at=due)
        worker.add_task(boom, "date", id="bad", run_at=due)
        worker.process_tasks()
        outcomes.wait(2)
        history = StoreRunHistory(dashboard)

        def both_finished() -> bool:
            return {r.status for r in history.query()} == {"succeeded", "failed"}

        assert wait_until(both_finished, worker.process_tasks)
        good = history.latest_for_task("good")
        bad = history.latest_for_task("bad")
        assert good is not None and bad is not None
        assert good.scheduler_identity == "worker" and bad.scheduler_identity == "worker"
        assert {good.run_id, bad.run_id} == set(
            outcomes.run_ids(events.TASK_EXECUTED) + outcomes.run_ids(events.TASK_ERROR)
        )
        assert (good.status, good.source, good.store) == ("succeeded", "scheduled", "default")
        assert good.scheduled_run_time == due
        assert (bad.exception_type, bad.exception_message) == ("RuntimeError", "history boom")
        assert history.get(good.run_id) == good
        assert history.query(status="failed") == [bad]
        assert history.query(q="worker", limit=5) == history.query(limit=5)
    finally:
        worker.shutdown()
        dashboard.shutdown()


def test_store_history_merges_local_records(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    scheduler = BaseScheduler(
        identity="both",
        timezone="UTC",
        stores={"default": {"type": "sqlalchemy", "url": url}},
        executors={"default": ThreadPoolExecutor()},
    )
    scheduler.start()
    try:
        local = MemoryRunHistoryStorage()
        history = StoreRunHistory(scheduler, local=local)
        outcomes = listen(scheduler)
        attach_run_history(scheduler, history)  # records to the local storage
        scheduler.add_task(noop, "date", id="s", run_at=datetime.now(UTC) - timedelta(seconds=1))
        scheduler.add_task(noop, "date", id="m", run_at=later())
        scheduler.process_tasks()
        outcomes.wait()
        scheduler.run_task("m", remove_finished=False)
        outcomes.wait()

        def store_finished() -> bool:
            return [r.status for r in scheduler.get_task_runs("s")] == ["succeeded"]

        assert wait_until(store_finished, scheduler.process_tasks)
        records = history.query()
        # the scheduled run is in the store and in memory under one run id: shown once
        assert sorted((r.task_id, r.source) for r in records) == [
            ("m", "manual"),
            ("s", "scheduled"),
        ]
        assert len({r.run_id for r in records}) == 2
        history.clear()
        assert local.query() == []
        assert [r.task_id for r in history.query()] == ["s"]
    finally:
        scheduler.shutdown()


# -- events ------------------------------------------------------------------------------------


def test_every_event_code_has_a_name_and_label() -> None:
    code = 1
    while code <= events.ALL_EVENTS:
        if code & events.ALL_EVENTS:
            name = event_name(code)
            assert name in EVENT_NAMES.values()
            assert not name.startswith("event.")
        code <<= 1
    assert (event_name(events.TASK_ADDED), event_label("task.added")) == (
        "task.added",
        "Task Added",
    )
    assert event_label("task.submitted") == "Task Submitted"
    assert event_label("task.max_instances") == "Task Max Instances"
    assert event_label("scheduler.started") == "Scheduler Started"
    assert event_name(2**40) == f"event.{2**40}"


def test_event_records_keep_plain_metadata_only(asyncio_scheduler: AsyncIOScheduler) -> None:
    storage = MemorySchedulerEventStorage()
    outcomes = listen(asyncio_scheduler)
    attach_event_recorder(asyncio_scheduler, storage)
    attach_event_recorder(asyncio_scheduler, storage)  # once
    asyncio_scheduler.add_task(returns_object, "date", id="obj", run_at=later())
    asyncio_scheduler.add_task(boom, "date", id="bad", run_at=later())
    asyncio_scheduler.run_task("obj", remove_finished=False)
    asyncio_scheduler.run_task("bad", remove_finished=False)
    outcomes.wait(2)
    names = [r.name for r in reversed(storage.query(task_id="obj"))]
    assert names[0] == "task.added"
    assert names.count("task.submitted") == 1 and names.count("task.executed") == 1
    [submitted] = storage.query(name="task.submitted", task_id="obj")
    assert submitted.label == "Task Submitted" and submitted.category == "task"
    assert submitted.metadata["source"] == "manual"
    [when] = submitted.metadata["scheduled_run_times"]
    assert datetime.fromisoformat(when).tzinfo is not None
    assert submitted.scheduler_identity == asyncio_scheduler.identity
    assert submitted.store == "default"
    [error] = storage.query(name="task.error")
    assert error.metadata["exception_type"] == "RuntimeError"
    assert error.metadata["exception_message"] == "history boom"

    def plain(value: Any) -> bool:
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return isinstance(value, (str, int, float, bool, type(None)))

    for record in storage.query(limit=1000):
        assert all(plain(v) for v in record.metadata.values()), record
        assert "return_value" not in record.metadata


def test_event_storage_filters_and_bounds() -> None:
    storage = MemorySchedulerEventStorage(maxlen=4)
    storage.record(events.SchedulerEvent(code=events.SCHEDULER_STARTED), scheduler_identity="s1")
    storage.record(events.TaskEvent(code=events.TASK_ADDED, task_id="a", alias="default"))
    storage.record(events.TaskEvent(code=events.TASK_REMOVED, task_id="b", store="mem"))
    storage.record(events.SchedulerEvent(code=events.EXECUTOR_ADDED, alias="pool"))
    assert [r.name for r in storage.query()] == [
        "executor.added",
        "task.removed",
        "task.added",
        "scheduler.started",
    ]
    assert storage.query(name="task.added")[0].store == "default"
    assert [r.task_id for r in storage.query(category="task")] == ["b", "a"]
    assert [r.name for r in storage.query(q="POOL")] == ["executor.added"]
    assert storage.query(task_id="a", name="task.removed") == []
    assert storage.query(limit=1)[0].name == "executor.added"
    storage.record(events.TaskEvent(code=events.TASK_MODIFIED, task_id="c"))
    assert len(storage) == 4 and storage.query()[-1].name == "task.added"
    ids = [r.event_id for r in storage.query()]
    assert ids == sorted(ids, reverse=True)
    with pytest.raises(ValueError, match=r"unknown event name 'task\.exploded'"):
        storage.query(name="task.exploded")
    with pytest.raises(ValueError, match="unknown event category 'jobs'"):
        storage.query(category="jobs")


def test_event_storage_concurrent_records() -> None:
    storage = MemorySchedulerEventStorage(maxlen=100_000)
    hammer(
        8,
        lambda i: [
            storage.record(events.TaskEvent(code=events.TASK_MODIFIED, task_id=f"{i}-{n}"))
            for n in range(300)
        ],
    )
    records = storage.query(limit=100_000)
    assert len(records) == 8 * 300
    assert len({r.event_id for r in records}) == 8 * 300


def test_default_event_storage() -> None:
    before = get_scheduler_event_storage()
    try:
        assert get_scheduler_event_storage() is before
        custom = MemorySchedulerEventStorage()
        assert get_scheduler_event_storage(custom) is custom
        assert get_scheduler_event_storage() is custom
    finally:
        get_scheduler_event_storage(before)
    assert isinstance(SchedulerEventRecord.from_event(events.SchedulerEvent(code=1)).at, datetime)


# -- audit -------------------------------------------------------------------------------------


class User:
    id = "admin"
    name = "Admin"


def test_audit_records_and_filters() -> None:
    storage = MemoryAuditTrailStorage(maxlen=10)
    storage.record("task.create", task_id="t1", task_name="First", user=User())
    storage.record("task.run", task_id="t1", outcome="error", detail="maximum instances reached")
    update = storage.record(
        "task.update", task_id="t2", changes={"name": ("old", "new"), "max_instances": 4}
    )
    storage.record("task.bulk_pause", detail="t1, t2", user="ops")
    assert update.label == "Task Update"
    assert dict(update.changes) == {"name": ("old", "new"), "max_instances": (None, "4")}
    assert [r.label for r in storage.query()] == [
        "Task Bulk Pause",
        "Task Update",
        "Task Run",
        "Task Create",
    ]
    assert storage.query(action="task.create")[0].user == "admin"
    assert [r.action for r in storage.query(task_id="t1")] == ["task.run", "task.create"]
    assert [r.action for r in storage.query(outcome="error")] == ["task.run"]
    assert [r.action for r in storage.query(q="MAX")] == ["task.update", "task.run"]
    assert [r.action for r in storage.query(user="ops")] == ["task.bulk_pause"]
    assert storage.query(limit=1)[0].action == "task.bulk_pause"
    assert set(AUDIT_ACTIONS) >= {r.action for r in storage.query()}
    storage.clear()
    assert storage.query() == []


def test_audit_rejects_bad_values() -> None:
    storage = MemoryAuditTrailStorage()
    with pytest.raises(ValueError, match=r"dotted lower-case name such as 'task\.run', got 'Run'"):
        storage.record("Run")
    with pytest.raises(ValueError, match="unknown audit outcome 'fine'; use one of ok, warning"):
        storage.record("task.run", outcome="fine")
    with pytest.raises(ValueError, match="unknown audit outcome"):
        storage.query(outcome="fine")
    with pytest.raises(TypeError, match="AuditRecord"):
        storage.append("task.run")  # type: ignore[arg-type]


def test_audit_is_bounded_and_thread_safe() -> None:
    storage = MemoryAuditTrailStorage(maxlen=100_000)
    hammer(8, lambda i: [storage.record("task.run", task_id=f"{i}-{n}") for n in range(300)])
    assert len(storage) == 8 * 300
    small = MemoryAuditTrailStorage(maxlen=7)
    hammer(4, lambda i: [small.record("task.run", task_id=str(n)) for n in range(50)])
    assert len(small) == 7


def test_default_audit_storage() -> None:
    before = get_audit_storage()
    try:
        custom = MemoryAuditTrailStorage()
        assert get_audit_storage(custom) is custom
        assert get_audit_storage() is custom
    finally:
        get_audit_storage(before)
    assert isinstance(AuditRecord(action="task.run").at, datetime)


def test_record_shapes_serialize_to_plain_data() -> None:
    run = RunHistoryRecord(run_id="r", task_id="t", scheduled_run_time=datetime.now(UTC))
    assert isinstance(run.to_dict()["scheduled_run_time"], str)
    assert run.status_label == "Submitted" and run.source_label == "Unknown"
    assert isinstance(entry("m").to_dict()["ts"], str)
    assert isinstance(AuditRecord(action="task.run").to_dict()["at"], str)
