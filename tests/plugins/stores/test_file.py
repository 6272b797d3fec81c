"""The file store's own promises: every id, atomic files, a cheap index that survives crashes."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncz.core.errors import TaskLookupError
from asyncz.plugins.stores.file import INDEX_NAME, FileStore, InvalidTaskIdError
from asyncz.tasks import Task
from asyncz.triggers import IntervalTrigger
from tests.plugins.stores import jobs

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def make(task_id: str, offset: float | None) -> Task:
    return Task(
        id=task_id,
        fn=jobs.job,
        trigger=IntervalTrigger(seconds=60, start_at=T0, timezone="UTC"),
        next_run_time=None if offset is None else T0 + timedelta(seconds=offset),
    )


def open_store(directory: Path, **options: Any) -> FileStore:
    store = FileStore(directory, **options)
    store.start(None, "default")
    return store


#: Ids that are not file names as they are: escaped, or named by a hash when too long.
ODD_IDS = [
    ".hidden",
    "..",
    "../x",
    "a/b",
    "a\\b",
    "c:d",
    "q?",
    '*<>|"',
    "%",
    "%2F",  # not the same task as "/"
    "/",
    "a.",
    "a ",
    "a",
    "A",
    " lead",
    "CON",
    "é" * 191,  # 382 bytes of UTF-8: named by a hash
    "日本" * 95,
    "x" * 191,
    "%%" + "0" * 40,  # looks like a hashed name
    "\u00a0nbsp\u2028line-separator",
]


def test_every_id_the_kernel_accepts_works(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    store = open_store(directory)
    for i, task_id in enumerate(ODD_IDS):
        store.add_task(make(task_id, i))
    for i, task_id in enumerate(ODD_IDS):
        task = store.lookup_task(task_id)
        assert task is not None and task.id == task_id
        assert task.next_run_time == T0 + timedelta(seconds=i)
    assert [t.id for t in store.get_all_tasks()] == ODD_IDS
    # Nothing outside the directory, no name longer than file systems allow.
    assert sorted(os.listdir(tmp_path)) == ["d"]
    assert all(len(name.encode()) <= 255 for name in os.listdir(directory))
    assert "%2Fb.task" not in os.listdir(directory)
    assert "a%2Fb.task" in os.listdir(directory)
    assert "a.task" in os.listdir(directory)  # plain ids keep their names
    # Another process's view, and a directory read back from its files alone.
    assert [t.id for t in open_store(directory).get_all_tasks()] == ODD_IDS
    store.shutdown()
    (directory / INDEX_NAME).unlink()
    again = open_store(directory)
    assert [(t.id, t.next_run_time) for t in again.get_all_tasks()] == [
        (task_id, T0 + timedelta(seconds=i)) for i, task_id in enumerate(ODD_IDS)
    ]
    for task_id in ODD_IDS:
        again.delete_task(task_id)
    assert again.get_all_tasks() == []
    assert [n for n in os.listdir(directory) if not n.startswith(".")] == []


@pytest.mark.parametrize("bad", ["", "x" * 192, "tab\tid", "nul\0", "\ud800"])
def test_ids_the_kernel_refuses_name_no_task(tmp_path: Path, bad: str) -> None:
    store = open_store(tmp_path / "d")
    assert store.lookup_task(bad) is None
    with pytest.raises(InvalidTaskIdError) as caught:
        store.delete_task(bad)
    # Refused as Asyncz does (RuntimeError); also a ValueError and, as no task of the store
    # can have it, a TaskLookupError.
    assert isinstance(caught.value, RuntimeError)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, TaskLookupError)


def test_long_ids_are_named_by_a_hash_with_the_id_inside(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    store = open_store(directory)
    task_id = "ü" * 150  # 300 bytes
    store.add_task(make(task_id, 0))
    (name,) = [n for n in os.listdir(directory) if not n.startswith(".")]
    assert name.startswith("%%") and name.endswith(".task") and len(name) == 47
    data = (directory / name).read_bytes()
    assert data.startswith(b"asyncz-task-id " + json.dumps(task_id).encode() + b"\n")
    assert store.lookup_task(task_id).id == task_id
    assert store.lookup_task("ü" * 149) is None


def test_a_directory_of_the_first_naming_scheme_still_loads(tmp_path: Path) -> None:
    """Ids that were valid file names keep their files; names that are no longer canonical
    (ids with '%', a trailing dot) are read as their own id and renamed at start."""
    directory = tmp_path / "d"
    directory.mkdir()
    encoder = FileStore(tmp_path / "scratch")
    old = {"plain-1": 1, "50%": 2, "a.": 3, "x%41": 4, "sp ace": 5}
    lines = [b'{"asyncz-file-index": 1}']
    for task_id, offset in old.items():
        (directory / f"{task_id}.task").write_bytes(encoder.encode_task(make(task_id, offset)))
        lines.append(json.dumps(["S", task_id, _us(T0 + timedelta(seconds=offset))]).encode())
    lines.append(json.dumps(["L", "plain-1", "someone", 5]).encode())  # a lease, no token
    (directory / INDEX_NAME).write_bytes(b"\n".join(lines) + b"\n")
    store = open_store(directory)
    tasks = store.get_all_tasks()
    assert [(t.id, t.next_run_time) for t in tasks] == [
        (i, T0 + timedelta(seconds=o)) for i, o in old.items()
    ]
    assert all(isinstance(t.store_version, int) for t in tasks)  # given one at start
    assert sorted(n for n in os.listdir(directory) if not n.startswith(".")) == sorted(
        ["plain-1.task", "50%25.task", "a%2E.task", "x%2541.task", "sp ace.task"]
    )
    store.update_task(tasks[0])
    assert store.delete_task("50%") is None
    assert [t.id for t in open_store(directory).get_all_tasks()] == [
        "plain-1",
        "a.",
        "x%41",
        "sp ace",
    ]


def _us(value: datetime) -> int:
    return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def test_layout_modes_and_suffix(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    store = open_store(directory, suffix=".job", mode=0o750)
    store.add_task(make("a-1_b.c", 0))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o750 & ~_umask()
    path = directory / "a-1_b.c.job"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 & ~_umask()  # no execute bits
    assert sorted(p for p in os.listdir(directory) if not p.startswith(".")) == ["a-1_b.c.job"]
    assert not [p for p in os.listdir(directory) if p.startswith(".tmp-")]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_wake_up_reads_no_task_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(tmp_path / "d")
    for i in range(50):
        store.add_task(make(f"t{i}", i))
    reads: list[str] = []
    original = FileStore._read

    def counting(self: FileStore, task_id: str) -> bytes | None:
        reads.append(task_id)
        return original(self, task_id)

    monkeypatch.setattr(FileStore, "_read", counting)
    other = open_store(tmp_path / "d")  # another process's view
    reads.clear()
    assert other.get_next_run_time() == T0
    assert reads == []
    assert [t.id for t in other.acquire_due_tasks(T0 + timedelta(seconds=1), "me", 100, 30)] == [
        "t0",
        "t1",
    ]
    assert reads == ["t0", "t1"]  # only the due ones


def test_a_lost_index_is_rebuilt_from_the_task_files(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    store = open_store(directory)
    store.add_task(make("a", 5))
    store.add_task(make("p", None))
    store.shutdown()
    (directory / INDEX_NAME).unlink()
    again = open_store(directory)
    assert [(t.id, t.next_run_time) for t in again.get_all_tasks()] == [
        ("a", T0 + timedelta(seconds=5)),
        ("p", None),
    ]


def test_start_reconciles_files_the_index_does_not_know(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    store = open_store(directory)
    store.add_task(make("a", 1))
    store.add_task(make("b", 2))
    store.shutdown()
    # A crash after writing b's file but before its journal line; and a journal line whose
    # file was already removed.
    index = directory / INDEX_NAME
    lines = index.read_bytes().splitlines(keepends=True)
    index.write_bytes(b"".join(lines[:-1]) + b'["S","ghost",1]\n')
    again = open_store(directory)
    assert [t.id for t in again.get_all_tasks()] == ["a", "b"]
    assert again.get_next_run_time() == T0 + timedelta(seconds=1)


def test_a_line_cut_short_by_a_crash_is_ignored_and_repaired(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    store = open_store(directory)
    store.add_task(make("a", 1))
    with open(directory / INDEX_NAME, "ab") as f:
        f.write(b'["S","a",99')  # a writer died here
    reader = open_store(directory)
    assert reader.lookup_task("a").next_run_time == T0 + timedelta(seconds=1)
    store.add_task(make("b", 2))  # appending cuts the fragment off first
    for line in (directory / INDEX_NAME).read_bytes().splitlines():
        json.loads(line)
    assert [t.id for t in reader.get_all_tasks()] == ["a", "b"]


def test_the_journal_is_compacted_and_followers_notice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("asyncz.plugins.stores.file._COMPACT_MIN", 50)
    directory = tmp_path / "d"
    writer = open_store(directory)
    follower = open_store(directory)
    writer.add_task(make("a", 0))
    for i in range(150):
        writer.acquire_due_tasks(T0 + timedelta(seconds=i), "w", 10, 30)
        writer.release_tasks("w", {"a": T0 + timedelta(seconds=i + 1)})
    lines = (directory / INDEX_NAME).read_bytes().count(b"\n")
    assert lines < 60
    assert follower.get_next_run_time() == T0 + timedelta(seconds=150)
    assert follower.acquire_due_tasks(T0 + timedelta(seconds=150), "f", 10, 30)[0].id == "a"
    assert writer.acquire_due_tasks(T0 + timedelta(seconds=150), "w", 10, 30) == []


def test_cleanup_directory_removes_everything_at_shutdown(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    store = open_store(directory, cleanup_directory=True)
    store.add_task(make("a", 0))
    store.shutdown()
    assert not directory.exists()


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="directory"):
        FileStore()
    with pytest.raises(ValueError, match="suffix"):
        FileStore(tmp_path, suffix="a/b")
    with pytest.raises(TypeError):
        FileStore(tmp_path, nonsense=1)  # type: ignore[call-arg]
