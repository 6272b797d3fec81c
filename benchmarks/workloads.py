"""The workloads, written once against `adapters.Adapter`, and the metrics each reports.

Every workload is an `async` function run inside a fresh worker process (see `worker`) that
returns plain data: `metrics` (the numbers the report tabulates), `counts` (what was verified,
e.g. how many tasks actually ran; the smoke test checks these, never timings) and `extra`
(supporting data such as the cron fire times for the cross-check).

`scale` multiplies task counts and fixed durations so the same code serves the full run, a quick
pass and the smoke test. Standard library only at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import re
import shutil
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from .adapters import Adapter, CronSpec, NotSupported, StoreSpec
from .probes import (
    LoopWakeups,
    StoreProbe,
    drain_loop,
    peak_rss_bytes,
    percentile,
    settled_rss_bytes,
)

UTC = timezone.utc
Result = dict[str, dict[str, Any]]


class WorkloadError(Exception):
    """The library ran but did not do what the workload asked (e.g. tasks never executed)."""


class ServerUnavailable(Exception):
    """A real-server case whose server is not reachable; reported as skipped."""


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    better: str  # "lower" or "higher"
    digits: int = 2
    noise: float = 0.0  # absolute differences up to this are reported as "≈ same"


@dataclass(frozen=True)
class Case:
    workload: str
    name: str
    run: Callable[[Adapter, str, float], Coroutine[Any, Any, Result]]
    metrics: tuple[Metric, ...]
    server: str | None = None  # "postgres" | "mariadb" | "redis" for real-server cases
    timeout: float = 300.0
    schedulers_only: bool = True  # False: croniter takes part too

    @property
    def id(self) -> str:
        return f"{self.workload}/{self.name}"


def scaled(n: int, scale: float, minimum: int) -> int:
    return max(minimum, round(n * scale))


def noop() -> None:
    """Module-level so persistent stores can record it as "benchmarks.workloads:noop"."""


# --- add_many --------------------------------------------------------------------------------

ADD_MANY = 10_000
# Far from any real run during a benchmark: tasks must sit in the store, not fire.
FAR_CRON = CronSpec("yearly", "0 0 1 1 *")


def _add_mixed(adapter: Adapter, scheduler: Any, n: int) -> None:
    """A third interval, a third cron, a third one-off date, none due while measured."""
    later = datetime.now(UTC) + timedelta(days=1)
    for i in range(n):
        kind = i % 3
        if kind == 0:
            adapter.add_interval(scheduler, noop, 3600)
        elif kind == 1:
            adapter.add_cron(scheduler, noop, FAR_CRON)
        else:
            adapter.add_date(scheduler, noop, later)


async def add_many(adapter: Adapter, case: str, scale: float) -> Result:
    n = scaled(ADD_MANY, scale, 30)
    scheduler = adapter.make_scheduler()
    rss0 = settled_rss_bytes()
    t0 = time.perf_counter()
    if case == "while-running":
        adapter.start(scheduler)
        await drain_loop()
        t0 = time.perf_counter()
    add = _add_interval_only if case == "interval-before-start" else _add_mixed
    # The first add is timed on its own: it pays for what a library loads lazily (plugins).
    add(adapter, scheduler, 1)
    t1 = time.perf_counter()
    add(adapter, scheduler, n - 1)
    t2 = time.perf_counter()
    if case != "while-running":
        adapter.start(scheduler)
    t3 = time.perf_counter()
    # Adds made while running queue one wake-up each; those are part of the cost of adding.
    await drain_loop()
    elapsed = time.perf_counter() - t0
    rss1 = settled_rss_bytes()
    stored = adapter.count_tasks(scheduler)
    adapter.shutdown(scheduler)
    await drain_loop()
    if stored != n:
        raise WorkloadError(f"{stored} of {n} tasks are in the store after adding")
    metrics = {
        "seconds": elapsed,
        "first_add": t1 - t0,
        "rss_per_task": (rss1 - rss0) / n,
        "peak_rss_mb": peak_rss_bytes() / 2**20,
    }
    if case != "while-running":
        metrics["start"] = t3 - t2
    return {"metrics": metrics, "counts": {"added": n, "stored": stored}, "extra": {}}


def _add_interval_only(adapter: Adapter, scheduler: Any, n: int) -> None:
    for _ in range(n):
        adapter.add_interval(scheduler, noop, 3600)


ADD_METRICS = (
    Metric("seconds", "time to add 10,000", "s", "lower", 3),
    Metric("first_add", "of which the first add", "s", "lower", 3),
    Metric("rss_per_task", "resident memory per task", "B", "lower", 0),
    Metric("peak_rss_mb", "peak resident memory of the process", "MiB", "lower", 1),
)
ADD_BEFORE_START_METRICS = (
    Metric("seconds", "time to add 10,000, then start()", "s", "lower", 3),
    Metric("first_add", "of which the first add", "s", "lower", 3),
    Metric("start", "of which start()", "s", "lower", 3),
    *ADD_METRICS[2:],
)


# --- cron_next -------------------------------------------------------------------------------

CRON_SPECS = (
    CronSpec("*/5 * * * *", "*/5 * * * *"),
    CronSpec("0 9-17 * * mon-fri", "0 9-17 * * mon-fri"),
    CronSpec(
        "last day of month 00:00", "0 0 L * *", fields={"day": "last", "hour": 0, "minute": 0}
    ),
    CronSpec("30 2 * * * Europe/Berlin", "30 2 * * *", timezone="Europe/Berlin"),
    CronSpec("0 * * * * Europe/Berlin", "0 * * * *", timezone="Europe/Berlin"),
    CronSpec("0 12 * * 0", "0 12 * * 0"),
)
# A week before the 2024 spring-forward in Europe/Berlin, so hourly and daily schedules cross a
# DST change within their first 1,000 fires (the daily one crosses several).
CRON_START = datetime(2024, 3, 24, 0, 0, tzinfo=UTC)
CRON_FIRES = 5_000
CROSS_CHECK = 1_000


def _na_reason(exc: BaseException) -> str | None:
    """The "not implemented" reason for exceptions that mean a missing feature, else None."""
    if isinstance(exc, NotSupported):
        return str(exc)
    if isinstance(exc, ImportError | LookupError | NotImplementedError):
        # First sentence only, without file paths: a table cell, not a traceback.
        text = re.sub(r" \((?:/|[A-Za-z]:\\)[^)]*\)", "", (str(exc).splitlines() or [""])[0])
        text = text.split(". ")[0].rstrip(".")
        return f"{type(exc).__name__}: {text}"
    return None


async def cron_next(adapter: Adapter, case: str, scale: float) -> Result:
    n = scaled(CRON_FIRES, scale, 20)
    metrics: dict[str, float] = {}
    fires: dict[str, list[int]] = {}
    unsupported: dict[str, str] = {}
    stuck: dict[str, list[int]] = {}  # name -> [index, previous instant, returned instant]
    total_fires, total_time = 0, 0.0
    for spec in CRON_SPECS:
        try:
            t0 = time.perf_counter()
            got = list(adapter.cron_fires(spec, CRON_START, n))
            elapsed = time.perf_counter() - t0
        except Exception as exc:
            reason = _na_reason(exc)
            if reason is None:
                raise
            unsupported[spec.name] = reason
            continue
        if len(got) != n:
            raise WorkloadError(f"{spec.name}: {len(got)} of {n} fire times")
        metrics[spec.name] = n / elapsed
        total_fires += n
        total_time += elapsed
        # Instants, not wall times: the cross-check compares when things happen.
        instants = [f.timestamp() for f in got[:CROSS_CHECK]]
        # A trigger that stops moving forward would make a scheduler fire in a loop; keep the
        # evidence and cut the list there so the comparison stays about the schedule.
        for i in range(1, len(instants)):
            if instants[i] <= instants[i - 1]:
                stuck[spec.name] = [i, int(instants[i - 1]), int(instants[i])]
                instants = instants[:i]
                break
        fires[spec.name] = [int(t) for t in instants]
    if not metrics:
        raise NotSupported("; ".join(sorted(set(unsupported.values()))))
    metrics["all"] = total_fires / total_time
    return {
        "metrics": metrics,
        "counts": {"fires": total_fires, "expressions": len(fires)},
        "extra": {"fires": fires, "unsupported": unsupported, "not_increasing": stuck},
    }


CRON_METRICS = (
    Metric("all", "all six expressions", "fires/s", "higher", 0),
    *(Metric(s.name, s.name, "fires/s", "higher", 0) for s in CRON_SPECS),
)


# --- dispatch --------------------------------------------------------------------------------

DISPATCH = 20_000
#: Every run crosses a process boundary twice: fewer of them, so the case fits the time budget.
DISPATCH_PROCESS = 5_000


async def dispatch(adapter: Adapter, case: str, scale: float) -> Result:
    kind, executor = case.split("@")
    n = scaled(DISPATCH_PROCESS if executor == "processpool" else DISPATCH, scale, 20)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    ran = 0
    lock = threading.Lock()

    def count_run() -> None:
        """One run done, from any thread."""
        nonlocal ran
        with lock:
            ran += 1
            last = ran == n
        if last:
            loop.call_soon_threadsafe(done.set)

    job: Callable[[], Any]
    if executor == "processpool":
        # Runs in another process: the job is a picklable no-op every library can reference,
        # and runs are counted from the parent's execution events.
        job = os.getpid
    elif kind == "async":

        async def job() -> None:
            nonlocal ran
            ran += 1
            if ran == n:
                done.set()

    else:
        job = count_run

    scheduler = adapter.make_scheduler(executor=executor)
    if executor == "processpool":
        adapter.on_executed(scheduler, count_run)
    due = datetime.now(UTC) - timedelta(seconds=1)
    for _ in range(n):
        adapter.add_date(scheduler, job, due)
    t0 = time.perf_counter()
    adapter.start(scheduler)
    start_call = time.perf_counter() - t0
    timeout = 120 + n / 100
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except asyncio.TimeoutError:
        raise WorkloadError(f"only {ran} of {n} tasks ran within {timeout:.0f} s") from None
    elapsed = time.perf_counter() - t0
    adapter.shutdown(scheduler)
    await drain_loop()
    return {
        "metrics": {"per_s": n / elapsed},
        "counts": {"due": n, "executed": ran},
        "extra": {"seconds": elapsed, "start_call_s": start_call},
    }


DISPATCH_METRICS = (Metric("per_s", "executions per second", "runs/s", "higher", 0),)


# --- latency ---------------------------------------------------------------------------------

LATENCY_TASKS = 500
LATENCY_SPACING = 0.020
LATENCY_LEAD = 1.0  # head start so start-up work cannot make the first tasks late


async def latency(adapter: Adapter, case: str, scale: float) -> Result:
    n = scaled(LATENCY_TASKS, scale, 5)
    started: list[float | None] = [None] * n

    async def job(i: int) -> None:
        started[i] = time.time()

    scheduler = adapter.make_scheduler()
    base = time.time() + LATENCY_LEAD
    planned = [datetime.fromtimestamp(base + i * LATENCY_SPACING, UTC) for i in range(n)]
    for i, when in enumerate(planned):
        adapter.add_date(scheduler, job, when, args=(i,))
    cpu0 = time.process_time()
    adapter.start(scheduler)
    await asyncio.sleep(LATENCY_LEAD / 2)
    # Punctuality can be bought with CPU (waking early and spinning): report the price too,
    # over the window from just before the first run to the last, start-up work excluded.
    cpu1 = time.process_time()
    deadline = time.time() + LATENCY_LEAD + n * LATENCY_SPACING + 10
    while None in started and time.time() < deadline:
        await asyncio.sleep(0.05)
    cpu2 = time.process_time()
    adapter.shutdown(scheduler)
    await drain_loop()
    missing = started.count(None)
    if missing:
        raise WorkloadError(f"{missing} of {n} tasks did not run")
    late = sorted(
        (s - when.timestamp()) * 1000 for s, when in zip(started, planned, strict=True) if s
    )
    early = sum(x < 0 for x in late)
    return {
        "metrics": {
            "p50": percentile(late, 50),
            "p95": percentile(late, 95),
            "p99": percentile(late, 99),
            "max": late[-1],
            "early": early,
            "cpu_s": cpu2 - cpu0,
            "cpu_runs_s": cpu2 - cpu1,
        },
        "counts": {"planned": n, "executed": n - missing, "early": early},
        "extra": {"min_ms": late[0], "cpu_ms": (cpu2 - cpu0) * 1000},
    }


LATENCY_METRICS = (
    *(Metric(k, f"lateness {k}", "ms", "lower", 2) for k in ("p50", "p95", "p99", "max")),
    Metric("early", "runs started before their time", "", "lower", 0),
    # The price of punctuality, beside it: all the process's threads, harness polling included
    # (the same for every library).
    Metric("cpu_s", "CPU seconds from start() to the last run", "s", "lower", 3),
    Metric("cpu_runs_s", "CPU seconds over the runs alone (no start-up)", "s", "lower", 3),
)


# --- idle ------------------------------------------------------------------------------------

IDLE_TASKS = 100_000
IDLE_WINDOW = 10.0


async def idle(adapter: Adapter, case: str, scale: float) -> Result:
    n = scaled(IDLE_TASKS, scale, 100)
    window = max(0.2, IDLE_WINDOW * scale)
    scheduler = adapter.make_scheduler()
    t0 = time.perf_counter()
    for _ in range(n):
        adapter.add_interval(scheduler, noop, 3600)
    adapter.start(scheduler)
    # Let start-up work (including any in worker threads) finish before the window opens.
    await asyncio.sleep(min(1.0, window))
    setup = time.perf_counter() - t0
    counter = LoopWakeups(asyncio.get_running_loop())
    # The harness's own sleep costs a wake-up or two; measure that on a short window first and
    # report only what the scheduler adds.
    w0 = counter.snapshot()
    await asyncio.sleep(0.05)
    w1 = counter.snapshot()
    own = [b - a for a, b in zip(w0, w1, strict=True)]
    cpu0 = time.process_time()
    w0 = counter.snapshot()
    await asyncio.sleep(window)
    w1 = counter.snapshot()
    cpu = time.process_time() - cpu0
    stored = adapter.count_tasks(scheduler)
    adapter.shutdown(scheduler)
    await drain_loop()
    if stored != n:
        raise WorkloadError(f"{stored} of {n} tasks are in the store")
    metrics: dict[str, float] = {"cpu_ms": cpu * 1000, "cpu_pct": cpu / window * 100}
    if counter.supported:
        metrics["wakeups"] = max(0, w1[1] - w0[1] - own[1])
        metrics["iterations"] = max(0, w1[0] - w0[0] - own[0])
    return {
        "metrics": metrics,
        "counts": {"tasks": n, "stored": stored},
        "extra": {
            "window_s": window,
            "setup_s": setup,
            "harness_wakeups": own[1],
            "io_wakeups": w1[2] - w0[2],
        },
    }


IDLE_METRICS = (
    # Differences of a millisecond of CPU in ten seconds are the harness, not the library.
    Metric("cpu_ms", "CPU time over the window", "ms", "lower", 1, noise=1.0),
    Metric("wakeups", "selector wake-ups over the window", "", "lower", 0),
    Metric("iterations", "event-loop iterations over the window", "", "lower", 0),
)


# --- sql_store -------------------------------------------------------------------------------

SQL_BOOT, SQL_LIVE = 10_000, 1_000
#: Tasks stored for the second wake-up figure, compared with the one at SQL_BOOT + SQL_LIVE.
SQL_SMALL = 1_000
WAKEUP_SAMPLES = 5
SERVER_URLS = {
    "postgres": ("ASYNCZ_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": ("ASYNCZ_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
    "redis": ("ASYNCZ_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
}


def server_url(server: str) -> str:
    env, default = SERVER_URLS[server]
    return os.environ.get(env, default)


def server_reachable(server: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(server_url(server))
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def open_backend(backend: str, tag: str) -> Iterator[StoreSpec]:
    """A store location private to this process, removed afterwards whatever happened."""
    if backend == "redis":
        import redis

        parts = urlsplit(server_url("redis"))
        db = int((parts.path or "/0").lstrip("/") or 0)
        prefix = f"asyncz-bench:{tag}:"
        client = redis.Redis(host=parts.hostname, port=parts.port or 6379, db=db)
        try:
            yield StoreSpec(
                "redis",
                redis_host=parts.hostname or "127.0.0.1",
                redis_port=parts.port or 6379,
                redis_db=db,
                key_prefix=prefix,
            )
        finally:
            for key in client.scan_iter(match=f"{prefix}*"):
                client.delete(key)
            client.close()
        return

    import sqlalchemy

    tmpdir = None
    if backend == "sqlite":
        tmpdir = tempfile.mkdtemp(prefix="asyncz-bench-")
        url = f"sqlite:///{os.path.join(tmpdir, 'bench.sqlite')}"
    else:
        url = server_url(backend)
    engine = sqlalchemy.create_engine(url)
    table = f"asyncz_bench_{tag}"
    try:
        yield StoreSpec("sqlalchemy", engine=engine, table=table)
    finally:
        try:
            # Connections a store left checked in could hold locks that would block the drop.
            engine.dispose()
            # Drop by prefix: a store may add tables of its own next to the one we named.
            names = sqlalchemy.inspect(engine).get_table_names()
            with engine.begin() as conn:
                # A connection still held elsewhere must fail the drop, not hang the run.
                if engine.dialect.name == "postgresql":
                    conn.execute(sqlalchemy.text("SET LOCAL lock_timeout = '10s'"))
                elif engine.dialect.name in ("mysql", "mariadb"):
                    conn.execute(sqlalchemy.text("SET SESSION lock_wait_timeout = 10"))
                for name in names:
                    if name.startswith(table):
                        conn.execute(sqlalchemy.text(f"DROP TABLE {name}"))
        finally:
            engine.dispose()
            if tmpdir:
                shutil.rmtree(tmpdir, ignore_errors=True)


async def _settle(probe: StoreProbe, t0: float) -> float:
    """Seconds from `t0` until queued callbacks ran and the store went quiet (work may sit in
    threads, so the loop draining is not enough)."""
    await drain_loop()
    t_drained = time.perf_counter()
    await probe.wait_quiet()
    return max(t_drained, probe.last_end) - t0


async def _wakeup_samples(
    adapter: Adapter, scheduler: Any, probe: StoreProbe
) -> tuple[list[float], list[int]]:
    """`WAKEUP_SAMPLES` wake-ups, each timed until the store went quiet, and their round trips."""
    wakeups: list[float] = []
    trips: list[int] = []
    for _ in range(WAKEUP_SAMPLES):
        c0 = probe.count
        t0 = time.perf_counter()
        adapter.wakeup(scheduler)
        wakeups.append(await _settle(probe, t0) * 1000)
        trips.append(probe.count - c0)
    return wakeups, trips


def _beside(spec: StoreSpec, name: str) -> StoreSpec:
    """A second location next to `spec`, named so that `open_backend` removes it too."""
    if spec.kind == "redis":
        return dataclasses.replace(spec, key_prefix=f"{spec.key_prefix}{name}:")
    return dataclasses.replace(spec, table=f"{spec.table}_{name}")


async def sql_store(adapter: Adapter, case: str, scale: float) -> Result:
    backend = case
    if backend != "sqlite" and not server_reachable(backend):
        raise ServerUnavailable(
            f"{backend} not reachable at {urlsplit(server_url(backend)).netloc}"
        )
    boot = scaled(SQL_BOOT, scale, 20)
    live = scaled(SQL_LIVE, scale, 10)
    small = scaled(SQL_SMALL, scale, 10)
    total = boot + live
    tag = f"{adapter.lib.replace('-', '_')}_{os.getpid()}"
    probe = StoreProbe()
    with open_backend(backend, tag) as spec:
        if spec.kind == "redis":
            probe.attach_redis()
        else:
            probe.attach_engine(spec.engine)
        try:
            scheduler = adapter.make_scheduler(store=spec)
            # Boot: the usual start-up of an application that declares its schedule, then starts.
            c0 = probe.count
            t0 = time.perf_counter()
            for _ in range(boot):
                adapter.add_interval(scheduler, noop, 3600)
            adapter.start(scheduler)
            add_boot = await _settle(probe, t0)
            trips_boot = probe.count - c0

            # Live: adds at run time, each of which may also wake the scheduler up.
            c0 = probe.count
            t0 = time.perf_counter()
            for _ in range(live):
                adapter.add_interval(scheduler, noop, 3600)
            add_live = await _settle(probe, t0)
            trips_live = probe.count - c0

            wakeups, trips = await _wakeup_samples(adapter, scheduler, probe)
            adapter.shutdown(scheduler)
            await drain_loop()
            await probe.wait_quiet()

            # The same wake-up with 1,000 stored, in a second table (key prefix) of the same
            # database: an indexed store takes about as long as with 11,000, a scan 11 times.
            few = adapter.make_scheduler(store=_beside(spec, "few"))
            for _ in range(small):
                adapter.add_interval(few, noop, 3600)
            adapter.start(few)
            await _settle(probe, time.perf_counter())
            wakeups_few, trips_few = await _wakeup_samples(adapter, few, probe)
            adapter.shutdown(few)
            await drain_loop()
            await probe.wait_quiet()

            # Loading from cold: a new scheduler and store on the same table (as after a
            # restart), started paused so that nothing runs, then all 11,000 loaded as due at
            # a time two hours ahead. Timed: the store's due-task query, fetching the rows and
            # rebuilding every task. Not timed: creating and starting the scheduler and store
            # (schema check, connecting; the workload's engine keeps its pooled connections).
            # The earlier schedulers are dropped and collected first, as a restarted process
            # would not have them: nothing decoded before is in the new store object (so the
            # figure is a real load, not a cache hit), and no library pays for collecting
            # another phase's garbage.
            scheduler = few = None
            fresh = adapter.make_scheduler(store=spec)
            adapter.start(fresh, paused=True)
            await _settle(probe, time.perf_counter())
            gc.collect()
            t0 = time.perf_counter()
            loaded = adapter.load_due(fresh, datetime.now(UTC) + timedelta(hours=2))
            load = time.perf_counter() - t0
            adapter.shutdown(fresh)
            await drain_loop()
            await asyncio.sleep(0.05)
        finally:
            probe.detach()
    # Every task is due two hours on, so this also checks that none was lost on the way in.
    if loaded != total:
        raise WorkloadError(f"{loaded} tasks loaded as due, expected {total}")
    wakeup, wakeup_few = statistics.median(wakeups), statistics.median(wakeups_few)
    return {
        "metrics": {
            "add_boot_s": add_boot,
            "add_live_ms": add_live / live * 1000,
            "wakeup_ms": wakeup,
            "wakeup_few_ms": wakeup_few,
            "wakeup_ratio": wakeup / wakeup_few,
            "wakeup_trips": statistics.median(trips),
            "load_due_s": load,
        },
        "counts": {"added": total, "loaded_due": loaded},
        "extra": {
            "boot_round_trips": trips_boot,
            "live_round_trips": trips_live,
            "wakeup_ms_samples": wakeups,
            "wakeup_trip_samples": trips,
            "few_stored": small,
            "wakeup_few_ms_samples": wakeups_few,
            "wakeup_few_trip_samples": trips_few,
        },
    }


SQL_METRICS = (
    Metric("add_boot_s", "add 10,000 before start, then start", "s", "lower", 2),
    Metric("add_live_ms", "add 1,000 more while running, per task", "ms", "lower", 3),
    Metric("wakeup_ms", "one wake-up, 11,000 stored, none due", "ms", "lower", 2),
    Metric("wakeup_few_ms", "one wake-up, 1,000 stored, none due", "ms", "lower", 2),
    Metric("wakeup_ratio", "wake-up at 11,000 stored / at 1,000", "", "lower", 2),
    Metric("wakeup_trips", "store round trips per wake-up", "", "lower", 0),
    Metric("load_due_s", "load all 11,000 as due, fresh store", "s", "lower", 3),
)


CASES: tuple[Case, ...] = (
    Case("add_many", "before-start", add_many, ADD_BEFORE_START_METRICS),
    Case("add_many", "interval-before-start", add_many, ADD_BEFORE_START_METRICS),
    Case("add_many", "while-running", add_many, ADD_METRICS),
    Case("cron_next", "6-expressions", cron_next, CRON_METRICS, schedulers_only=False),
    Case("dispatch", "async@asyncio", dispatch, DISPATCH_METRICS),
    Case("dispatch", "sync@asyncio", dispatch, DISPATCH_METRICS),
    Case("dispatch", "sync@threadpool", dispatch, DISPATCH_METRICS),
    Case("dispatch", "sync@processpool", dispatch, DISPATCH_METRICS),
    Case("dispatch", "sync@debug", dispatch, DISPATCH_METRICS),
    Case("latency", "500x20ms", latency, LATENCY_METRICS, timeout=120),
    Case("idle", "100k-tasks", idle, IDLE_METRICS),
    Case("sql_store", "sqlite", sql_store, SQL_METRICS, timeout=900),
    Case("sql_store", "postgres", sql_store, SQL_METRICS, server="postgres", timeout=900),
    Case("sql_store", "mariadb", sql_store, SQL_METRICS, server="mariadb", timeout=900),
    Case("sql_store", "redis", sql_store, SQL_METRICS, server="redis", timeout=900),
)
WORKLOADS = tuple(dict.fromkeys(c.workload for c in CASES))


def get_case(case_id: str) -> Case:
    for case in CASES:
        if case.id == case_id:
            return case
    raise SystemExit(f"unknown case {case_id!r}; choose from {', '.join(c.id for c in CASES)}")
