"""Applying a tasks file to schedulers on a real SQLite store: added once, left alone when
unchanged (nothing written, across restarts), changed fields written without touching the run
time, a changed trigger rescheduled, removal only from stores the file owns, pause intent, and
two schedulers sharing the store applying the same file (no duplicates, no lost runs)."""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sa = pytest.importorskip("sqlalchemy")

from asyncz.core.errors import SchedulerNotRunningError  # noqa: E402
from asyncz.schedulers import AsyncIOScheduler  # noqa: E402
from asyncz.tasksfile import TasksFile, TasksFileError, load_tasks_file  # noqa: E402
from tests.tasksfile import jobs  # noqa: E402


def tasks_file(tmp_path: Path, body: str, *, header: str = "") -> TasksFile:
    database = tmp_path / "tasks.db"
    path = tmp_path / "tasks.toml"
    path.write_text(
        f'[asyncz]\ntimezone = "UTC"\n{header}\n'
        f'[stores.default]\ntype = "sqlalchemy"\ndatabase = "sqlite:///{database}"\n\n{body}'
    )
    return load_tasks_file(path)


def task(task_id: str, trigger: str = '{ type = "interval", minutes = 10 }', **fields: str) -> str:
    lines = [
        "[[tasks]]",
        f'id = "{task_id}"',
        'callable = "tests.tasksfile.jobs:note"',
        'args = ["/dev/null"]',
        f"trigger = {trigger}",
    ]
    lines += [f"{name} = {value}" for name, value in fields.items()]
    return "\n".join(lines) + "\n\n"


def rows(scheduler: AsyncIOScheduler, store: str = "default") -> dict[str, tuple[int, Any]]:
    """Each stored task's (version, next run time column): what a write would change."""
    sql = scheduler.lookup_store(store)
    with sql.engine.connect() as conn:  # type: ignore[attr-defined]
        table = sql.table  # type: ignore[attr-defined]
        result = conn.execute(sa.select(table.c.id, table.c.version, table.c.next_run_time))
        return {r.id: (r.version, r.next_run_time) for r in result}


@pytest.fixture
def run() -> Callable[..., Any]:
    """Run ``body(*schedulers)`` with a started scheduler made from each spec; shut them down."""

    def runner(body: Callable[..., Any], *specs: TasksFile, **overrides: Any) -> Any:
        async def main() -> Any:
            schedulers = []
            for spec in specs:
                scheduler = spec.create_scheduler(**overrides)
                scheduler.start()
                schedulers.append(scheduler)
            try:
                result = body(*schedulers)
                if asyncio.iscoroutine(result):
                    result = await result
                return result
            finally:
                for scheduler in schedulers:
                    scheduler.shutdown()

        return asyncio.run(main())

    return runner


def test_an_unchanged_file_writes_nothing_across_restarts(
    tmp_path: Path, run: Callable[..., Any]
) -> None:
    spec = tasks_file(tmp_path, task("a") + task("b", '{ type = "cron", crontab = "0 3 * * *" }'))

    def first(scheduler: AsyncIOScheduler) -> Any:
        report = spec.apply(scheduler)
        assert (report.added, report.updated, report.unchanged, report.removed) == (
            ["a", "b"],
            [],
            [],
            [],
        )
        before = rows(scheduler)
        again = spec.apply(scheduler)
        assert again.unchanged == ["a", "b"]
        assert again.added == again.updated == again.removed == []
        assert rows(scheduler) == before
        return before

    before = run(first, spec)
    # A restart: a new scheduler, the file read again, applied twice.
    respec = load_tasks_file(spec.path)

    def restarted(scheduler: AsyncIOScheduler) -> None:
        for _ in range(2):
            report = respec.apply(scheduler)
            assert report.unchanged == ["a", "b"]
            assert report.added == report.updated == []
        assert rows(scheduler) == before

    run(restarted, respec)


def test_a_changed_field_is_written_without_touching_the_run_time(
    tmp_path: Path, run: Callable[..., Any]
) -> None:
    spec = tasks_file(tmp_path, task("a") + task("b"))
    before = run(lambda s: (spec.apply(s), rows(s))[1], spec)
    changed = tasks_file(
        tmp_path, task("a", max_instances="3", name='"renamed"') + task("b", timeout="5")
    )

    def body(scheduler: AsyncIOScheduler) -> None:
        report = changed.apply(scheduler)
        assert report.updated == ["a", "b"]
        after = rows(scheduler)
        for task_id in ("a", "b"):
            assert after[task_id][1] == before[task_id][1]  # the run time column as it was
            assert after[task_id][0] != before[task_id][0]  # but written
        a = scheduler.get_task("a")
        assert (a.max_instances, a.name) == (3, "renamed")
        assert scheduler.get_task("b").timeout == 5.0
        assert changed.apply(scheduler).unchanged == ["a", "b"]

    run(body, changed)


def test_changed_arguments_and_callable_are_written(
    tmp_path: Path, run: Callable[..., Any]
) -> None:
    spec = tasks_file(tmp_path, task("a"))
    before = run(lambda s: (spec.apply(s), rows(s))[1], spec)
    text = task("a").replace('"/dev/null"', '"/dev/null", "hello"').replace(":note", ":other")
    changed = tasks_file(tmp_path, text)

    def body(scheduler: AsyncIOScheduler) -> None:
        assert changed.apply(scheduler).updated == ["a"]
        stored = scheduler.get_task("a")
        assert stored.fn is jobs.other
        assert stored.args == ("/dev/null", "hello")
        assert rows(scheduler)["a"][1] == before["a"][1]

    run(body, changed)


def test_a_changed_trigger_gets_a_new_next_run_time(
    tmp_path: Path, run: Callable[..., Any]
) -> None:
    spec = tasks_file(tmp_path, task("a") + task("b"))
    before = run(lambda s: (spec.apply(s), rows(s))[1], spec)
    changed = tasks_file(
        tmp_path,
        task("a", '{ type = "cron", crontab = "0 3 * * *" }')
        + task("b", '{ type = "interval", minutes = 20 }'),
    )

    def body(scheduler: AsyncIOScheduler) -> None:
        report = changed.apply(scheduler)
        assert report.updated == ["a", "b"]
        after = rows(scheduler)
        assert after["a"][1] != before["a"][1]
        assert after["b"][1] > before["b"][1]  # 20 minutes from now, not 10
        a = scheduler.get_task("a")
        assert (a.next_run_time.hour, a.next_run_time.minute) == (3, 0)
        assert changed.apply(scheduler).unchanged == ["a", "b"]

    run(body, changed)


def test_tasks_left_out_are_removed_only_from_stores_the_file_owns(
    tmp_path: Path, run: Callable[..., Any]
) -> None:
    spec = tasks_file(tmp_path, task("a") + task("b"))

    def setup(scheduler: AsyncIOScheduler) -> None:
        spec.apply(scheduler)
        scheduler.add_task(jobs.note, "interval", minutes=5, args=["/dev/null"], id="manual")

    run(setup, spec)
    not_owner = tasks_file(tmp_path, task("a"))
    report = run(not_owner.apply, not_owner)
    assert report.removed == []
    assert report.unchanged == ["a"]
    owner = tasks_file(tmp_path, task("a"), header="owns_tasks = true")

    def body(scheduler: AsyncIOScheduler) -> None:
        report = owner.apply(scheduler)
        assert sorted(report.removed) == ["b", "manual"]
        assert [t.id for t in scheduler.get_tasks()] == ["a"]
        assert owner.apply(scheduler).removed == []

    run(body, owner)


def test_owning_some_stores_leaves_the_others_alone(
    tmp_path: Path, run: Callable[..., Any]
) -> None:
    header = 'owns_tasks = ["default"]\n\n[stores.other]\ntype = "sqlalchemy"\n'
    header += f'database = "sqlite:///{tmp_path / "other.db"}"\n'
    spec = tasks_file(tmp_path, task("a"), header=header)
    assert spec.owns_tasks == ("default",)

    def body(scheduler: AsyncIOScheduler) -> None:
        for store in ("default", "other"):
            scheduler.add_task(
                jobs.note, "interval", minutes=5, args=["/dev/null"], id=f"x-{store}", store=store
            )
        report = spec.apply(scheduler)
        assert report.removed == ["x-default"]
        assert scheduler.get_task("x-other") is not None

    run(body, spec)


def test_pause_intent(tmp_path: Path, run: Callable[..., Any]) -> None:
    spec = tasks_file(tmp_path, task("p", paused="true") + task("r"))

    def body(scheduler: AsyncIOScheduler) -> None:
        spec.apply(scheduler)
        assert scheduler.get_task("p").next_run_time is None
        assert scheduler.get_task("r").next_run_time is not None
        # An operator pauses r; the file does not say: it stays paused.
        scheduler.pause_task("r")
        assert spec.apply(scheduler).unchanged == ["p", "r"]
        assert scheduler.get_task("r").next_run_time is None
        # A file saying paused = false resumes both; paused = true pauses.
        running = tasks_file(tmp_path, task("p", paused="false") + task("r", paused="false"))
        assert running.apply(scheduler).updated == ["p", "r"]
        assert scheduler.get_task("p").next_run_time is not None
        paused = tasks_file(tmp_path, task("p", paused="true") + task("r"))
        assert paused.apply(scheduler).updated == ["p"]
        assert scheduler.get_task("p").next_run_time is None
        # A new trigger for a paused task keeps it paused.
        retimed = tasks_file(tmp_path, task("p", '{ type = "interval", minutes = 3 }'))
        assert retimed.apply(scheduler).updated == ["p"]
        stored = scheduler.get_task("p")
        assert stored.next_run_time is None
        assert stored.trigger.interval.total_seconds() == 180

    run(body, spec)


def test_a_one_off_task_whose_time_has_passed_is_not_added(
    tmp_path: Path, run: Callable[..., Any]
) -> None:
    spec = tasks_file(
        tmp_path,
        task("past", '{ type = "date", run_at = 2001-01-01T00:00:00Z }')
        + task("future", '{ type = "date", run_at = 2999-01-01T00:00:00Z }')
        + task(
            "ended",
            '{ type = "interval", minutes = 1, start_at = 2000-01-01T00:00:00Z, '
            "end_at = 2001-01-01T00:00:00Z }",
        ),
    )

    def body(scheduler: AsyncIOScheduler) -> None:
        report = spec.apply(scheduler)
        assert report.expired == ["past", "ended"]
        assert report.added == ["future"]
        assert [t.id for t in scheduler.get_tasks()] == ["future"]

    run(body, spec)


def test_a_task_moved_to_another_store(tmp_path: Path, run: Callable[..., Any]) -> None:
    header = f'\n[stores.other]\ntype = "sqlalchemy"\ndatabase = "sqlite:///{tmp_path}/o.db"\n'
    spec = tasks_file(tmp_path, task("a"), header=header)
    moved = tasks_file(tmp_path, task("a", store='"other"'), header=header)

    def body(scheduler: AsyncIOScheduler) -> None:
        spec.apply(scheduler)
        assert moved.apply(scheduler).updated == ["a"]
        assert scheduler.lookup_task("a")[1] == "other"
        assert scheduler.get_tasks(store="default") == []
        assert moved.apply(scheduler).unchanged == ["a"]

    run(body, spec)


def test_a_stored_task_that_cannot_be_restored_is_replaced(
    tmp_path: Path, run: Callable[..., Any]
) -> None:
    module = tmp_path / "gone_tasks_mod_q1.py"
    module.write_text("def job(path):\n    pass\n")
    old = tasks_file(
        tmp_path, task("a").replace("tests.tasksfile.jobs:note", "gone_tasks_mod_q1:job")
    )
    run(old.apply, old)
    module.unlink()
    sys.modules.pop("gone_tasks_mod_q1", None)
    new = tasks_file(tmp_path, task("a"))

    def body(scheduler: AsyncIOScheduler) -> None:
        assert scheduler.get_task("a") is None  # quarantined
        report = new.apply(scheduler)
        assert report.updated == ["a"]
        assert scheduler.get_task("a").fn is jobs.note
        assert new.apply(scheduler).unchanged == ["a"]

    run(body, new)


def test_apply_needs_a_running_scheduler_and_names_unknown_aliases(tmp_path: Path) -> None:
    spec = tasks_file(tmp_path, task("a"))
    with pytest.raises(SchedulerNotRunningError):
        spec.apply(spec.create_scheduler())
    pooled = tasks_file(
        tmp_path, '[executors.pool]\ntype = "threadpool"\n\n' + task("a", executor='"pool"')
    )

    async def main() -> None:
        # --store/--executor style overrides can leave out what the file's tasks need.
        scheduler = pooled.create_scheduler(executors={"pool": {"type": "asyncio"}})
        scheduler.start()
        try:
            scheduler.remove_executor("pool")
            with pytest.raises(TasksFileError, match=r"tasks\[0\]\.executor: the scheduler has"):
                pooled.apply(scheduler)
            assert scheduler.get_tasks() == []
        finally:
            scheduler.shutdown()

    asyncio.run(main())


def test_create_scheduler_names_a_store_that_cannot_be_made(tmp_path: Path) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text('[stores.default]\ntype = "file"\ndirectory = 5\n')
    spec = load_tasks_file(path)
    with pytest.raises(TasksFileError) as caught:
        spec.create_scheduler()
    assert str(caught.value).startswith(f"{path}: ")


def test_two_schedulers_sharing_a_store_apply_the_same_file(
    tmp_path: Path, run: Callable[..., Any]
) -> None:
    """Both apply at once (first start, then again mid-run with a change): every task once,
    every fire time run once and none skipped."""
    log = tmp_path / "runs.log"
    body_text = task("tick", '{ type = "interval", seconds = 0.25 }', coalesce="false").replace(
        '"/dev/null"', f'"{log}"'
    ) + task("slow", '{ type = "cron", crontab = "0 3 * * *" }')
    spec = tasks_file(tmp_path, body_text, header="owns_tasks = true")
    changed = tasks_file(
        tmp_path, body_text.replace("coalesce = false", "coalesce = false\nmax_instances = 2")
    )

    async def body(a: AsyncIOScheduler, b: AsyncIOScheduler) -> int:
        reports = await asyncio.gather(
            asyncio.to_thread(spec.apply, a), asyncio.to_thread(spec.apply, b)
        )
        added = [i for r in reports for i in r.added]
        kept = [i for r in reports for i in r.unchanged + r.updated]
        assert sorted(added) == ["slow", "tick"]  # each added by exactly one of them
        assert sorted(kept) == ["slow", "tick"]
        assert sorted(t.id for t in a.get_tasks()) == ["slow", "tick"]
        await wait_for_runs(a, 6)
        reports = await asyncio.gather(
            asyncio.to_thread(changed.apply, a), asyncio.to_thread(changed.apply, b)
        )
        assert sorted(i for r in reports for i in r.updated + r.unchanged) == [
            "slow",
            "slow",
            "tick",
            "tick",
        ]
        assert a.get_task("tick").max_instances == 2
        seen = len(a.get_task_runs("tick", limit=1000))
        await wait_for_runs(a, seen + 6)
        records = sorted(a.get_task_runs("tick", limit=1000), key=lambda r: r.scheduled_at)
        times = [r.scheduled_at for r in records]
        assert len(set(times)) == len(times)  # no fire time twice
        steps = {(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)}
        assert steps == {0.25}  # none skipped
        assert {r.instance for r in records} <= {a.identity, b.identity}
        assert sorted(t.id for t in b.get_tasks()) == ["slow", "tick"]
        return sum(r.status == "succeeded" for r in records)

    succeeded = run(body, spec, spec)
    assert succeeded >= 6
    # Each run that succeeded did its work (runs still going at the shutdown may add more).
    assert log.read_text().splitlines().count("ran") >= succeeded


async def wait_for_runs(scheduler: AsyncIOScheduler, count: int) -> None:
    async def enough() -> None:
        while len(scheduler.get_task_runs("tick", limit=1000)) < count:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(enough(), 30)


@pytest.mark.parametrize(
    "store",
    [
        'type = "sqlalchemy"\nserializer = "json"\ndatabase = "sqlite:///{dir}/j.db"',
        'type = "file"\ndirectory = "{dir}/files"',
        'type = "memory"',
    ],
)
def test_unchanged_is_recognised_whatever_the_store_keeps(
    tmp_path: Path, run: Callable[..., Any], store: str
) -> None:
    body = (
        task("a", '{ type = "calendar_interval", days = 1, hour = 4 }')
        + task(
            "b",
            '{ type = "or", triggers = [{ type = "interval", hours = 1 }, '
            '{ type = "cron", day_of_week = "mon-fri" }] }',
        )
        + task("c", '{ type = "date" }')
        + '[[tasks]]\nid = "d"\ncommand = ["echo", "x"]\n'
        'trigger = { type = "cron", crontab = "*/5 * * * *" }\n'
    )
    path = tmp_path / "t.toml"
    path.write_text(f"[stores.default]\n{store.format(dir=tmp_path)}\n\n{body}")
    spec = load_tasks_file(path)

    def check(scheduler: AsyncIOScheduler) -> None:
        assert spec.apply(scheduler).added == ["a", "b", "c", "d"]
        before = {t.id: t.next_run_time for t in scheduler.get_tasks()}
        assert spec.apply(scheduler).unchanged == ["a", "b", "c", "d"]
        assert {t.id: t.next_run_time for t in scheduler.get_tasks()} == before

    run(check, spec)
