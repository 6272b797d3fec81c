"""Asyncz's store surface as asyncz offers it: reprs, unsafe file ids, methods of instances,
Asyncz's record forms (TaskState, TaskStateEnvelope) and the persistence constants."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from asyncz.exceptions import SerializationError, TaskLookupError, TaskRestoreError
from asyncz.shapes import ShapeMigrationError, ShapeNotFoundError
from asyncz.stores.file import FileStore
from asyncz.stores.memory import MemoryStore
from asyncz.stores.persistence import (
    TASK_STATE_ENTITY,
    TASK_STATE_ENVELOPE_VERSION,
    TaskStateEnvelope,
)
from asyncz.tasks import Task
from asyncz.triggers import IntervalTrigger

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


def add(a: int, b: int) -> int:
    return a + b


class Adder:
    def __init__(self, base: int = 0) -> None:
        self.base = base

    def add(self, a: int, b: int) -> int:
        return self.base + a + b


module_adder = Adder(100)


def make(task_id: str, fn: object = add, **fields: object) -> Task:
    return Task(
        id=task_id,
        fn=fn,
        trigger=IntervalTrigger(seconds=60, start_at=T0, timezone="UTC"),
        next_run_time=T0,
        **fields,
    )


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    store = FileStore(directory=tmp_path / "tasks")
    store.start(None, "file")
    yield store
    store.shutdown()


def test_persistence_constants() -> None:
    assert (TASK_STATE_ENTITY, TASK_STATE_ENVELOPE_VERSION) == ("task_state", 1)
    envelope = TaskStateEnvelope(entity="task_state", version=1, shape="pydantic", payload=None)
    with pytest.raises(AttributeError):
        envelope.shape = "x"  # type: ignore[misc]


def test_reprs(tmp_path: Path) -> None:
    assert repr(MemoryStore()) == "<MemoryStore>"
    assert repr(FileStore(directory=tmp_path)) == f"<FileStore (directory={tmp_path})>"


@pytest.mark.parametrize("risky", ["../x", ".x", "a\\b", "/x"])
def test_ids_unsafe_as_file_names_stay_inside_the_directory(
    store: FileStore, risky: str, tmp_path: Path
) -> None:
    # Asyncz refuses them (RuntimeError); asyncz has one id rule for every store and escapes
    # them into file names of the store's directory (docs/differences.md).
    assert store.lookup_task(risky) is None
    with pytest.raises(TaskLookupError):
        store.delete_task(risky)
    store.add_task(make(risky))
    assert store.lookup_task(risky).id == risky
    names = [p.name for p in (tmp_path / "tasks").iterdir() if not p.name.startswith(".")]
    assert len(names) == 1 and "/" not in names[0] and not names[0].startswith(".")
    assert not (tmp_path / "x").exists()
    store.delete_task(risky)
    assert store.lookup_task(risky) is None


def test_lambdas_are_serialization_errors_and_value_errors(store: FileStore) -> None:
    with pytest.raises(SerializationError) as info:
        store.add_task(make("lam", fn=lambda: None))
    assert isinstance(info.value, ValueError)


def test_methods_of_instances(store: FileStore) -> None:
    local = Adder(10)
    store.add_task(make("local", fn=local.add, kwargs={"a": 1, "b": 2}))
    store.add_task(make("module", fn=module_adder.add, args=(1, 2)))
    store.add_task(make("text", fn=f"{__name__}:module_adder.add", args=(1, 2)))
    store.add_task(make("classfn", fn=f"{__name__}:add", args=(1, 2)))
    results = {}
    for task_id in ("local", "module", "text", "classfn"):
        task = store.lookup_task(task_id)
        results[task_id] = task.fn(*task.args, **task.kwargs)
    assert results == {"local": 13, "module": 103, "text": 103, "classfn": 3}
    # a module-level instance is referenced by name: the live object, not a copy
    assert store.lookup_task("module").fn.__self__ is module_adder


def test_conditional_encrypt_and_decrypt_are_the_stores_sealing(tmp_path: Path) -> None:
    sealed = FileStore(directory=tmp_path / "s", signing_key="k" * 32)
    sealed.start(None, "s")
    try:
        data = sealed.conditional_encrypt(b"payload")
        assert data != b"payload" and sealed.conditional_decrypt(data) == b"payload"
        with pytest.raises(TaskRestoreError):
            sealed.conditional_decrypt(data[:-1] + b"X")
    finally:
        sealed.shutdown()


def test_pickled_task_states_are_read(store: FileStore) -> None:
    task = make("legacy", args=(1, 2))
    path = store.directory / f"legacy{store.suffix}"
    path.write_bytes(store.conditional_encrypt(pickle.dumps(task.__getstate__())))
    # An Asyncz directory is met at start, where the files are reconciled with the journal.
    store.shutdown()
    store.start(None, "file")
    back = store.lookup_task("legacy")
    assert back is not None and back.fn is add and back.args == (1, 2)
    assert back.next_run_time == T0 and back.store_alias == "file"
    # the journal's run time wins, as for records
    back.next_run_time = T0 + timedelta(minutes=1)
    store.update_task(back)
    assert store.lookup_task("legacy").next_run_time == T0 + timedelta(minutes=1)


def test_envelopes_are_checked_then_read(store: FileStore) -> None:
    state = make("env").__getstate__()

    def sealed(**fields: object) -> bytes:
        values = {"entity": "task_state", "version": 1, "shape": "pydantic", "payload": state}
        values.update(fields)
        envelope = TaskStateEnvelope(**values)  # type: ignore[arg-type]
        return store.conditional_encrypt(pickle.dumps(envelope, store.pickle_protocol))

    assert store.rebuild_task(sealed()).id == "env"
    with pytest.raises(ShapeNotFoundError, match="no-such-shape"):
        store.rebuild_task(sealed(shape="no-such-shape"))
    with pytest.raises(ShapeMigrationError, match="version 2"):
        store.rebuild_task(sealed(version=2))
    with pytest.raises(ShapeMigrationError, match="'other'"):
        store.rebuild_task(sealed(entity="other"))
    # In a store, an envelope that cannot be read is quarantined like any record, never deleted.
    store.add_task(make("env"))
    path = store.directory / f"env{store.suffix}"
    path.write_bytes(sealed(version=2))
    assert store.lookup_task("env") is None
    assert path.exists()
    assert "version 2" in store.get_quarantined()["env"]
