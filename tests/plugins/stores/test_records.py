"""Records (task <-> plain data), serializers, signing and encryption, quarantine reasons."""

from __future__ import annotations

import functools
import pickle
from datetime import datetime, timezone

import pytest

from asyncz.core.errors import SerializationError, TaskRestoreError
from asyncz.core.records import (
    RECORD_VERSION,
    pack_record,
    record_to_task,
    task_to_record,
    unpack_record,
)
from asyncz.plugins.serializers.json import JSONSerializer
from asyncz.plugins.serializers.pickle import PickleSerializer
from asyncz.plugins.serializers.protection import Protection, ProtectionError
from asyncz.tasks import Task
from asyncz.triggers import DateTrigger, IntervalTrigger

UTC = timezone.utc
T0 = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)


def job(*args: object, **kwargs: object) -> None:
    return None


class Holder:
    @classmethod
    def cm(cls) -> None:
        return None

    def method(self) -> None:
        return None


def make(**fields: object) -> Task:
    options: dict[str, object] = {
        "id": "a",
        "fn": job,
        "trigger": IntervalTrigger(seconds=5, start_at=T0, timezone="Europe/Berlin"),
        "next_run_time": T0,
    }
    options.update(fields)
    return Task(**options)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field_and_microseconds() -> None:
    task = make(
        name="n",
        args=(1, "x"),
        kwargs={"k": [1, 2]},
        executor="pool",
        coalesce=False,
        max_instances=3,
        mistrigger_grace_time=7,
        timeout=9,
    )
    record = task_to_record(task)
    assert record["fn"] == f"{__name__}:job"
    assert record["trigger"][0] == "interval" and record["version"] == RECORD_VERSION
    assert record["next_run_time"] == 1795867200123456
    for serializer in (PickleSerializer(), JSONSerializer()):
        back = record_to_task(serializer.loads(serializer.dumps(record)))
        assert back.id == "a" and back.name == "n" and back.fn is job
        assert back.args == (1, "x") and back.kwargs == {"k": [1, 2]}
        assert back.trigger == task.trigger
        assert (back.executor, back.coalesce, back.max_instances) == ("pool", False, 3)
        assert (back.mistrigger_grace_time, back.timeout) == (7.0, 9.0)
        assert back.next_run_time == T0
        assert str(back.next_run_time.tzinfo) == "Europe/Berlin"  # the trigger's zone


def test_paused_and_classmethods_and_date_triggers() -> None:
    task = make(fn=Holder.cm, trigger=DateTrigger(T0), next_run_time=None)
    back = record_to_task(task_to_record(task))
    assert back.next_run_time is None and back.fn == Holder.cm
    assert back.trigger == task.trigger


@pytest.mark.parametrize(
    ("fn", "why"),
    [
        (lambda: None, "lambda"),
        (functools.partial(job, 1), "partial"),
    ],
)
def test_unreferenceable_callables_are_refused_with_a_reason(fn: object, why: str) -> None:
    with pytest.raises(SerializationError, match=why) as info:
        task_to_record(make(fn=fn))
    assert "module-level function" in str(info.value)
    assert isinstance(info.value, ValueError)  # as Asyncz's ValueError


def test_methods_of_unnamed_instances_keep_the_instance_as_first_argument() -> None:
    # As Asyncz stores them: the class's function, the instance prepended to the arguments.
    holder = Holder()
    record = task_to_record(make(fn=holder.method, args=(1,)))
    assert record["fn"] == f"{__name__}:Holder.method"
    assert record["args"][0] is holder and record["args"][1:] == [1]
    back = record_to_task(pickle.loads(pickle.dumps(record)))
    assert back.fn is Holder.method and isinstance(back.args[0], Holder)
    assert back.args[1:] == (1,)


def test_nested_functions_are_refused() -> None:
    def inner() -> None:
        return None

    with pytest.raises(SerializationError, match="nested function"):
        task_to_record(make(fn=inner))


def test_unregistered_trigger_is_refused() -> None:
    class Odd(IntervalTrigger):
        alias = "odd-one"

    with pytest.raises(SerializationError, match="not a registered trigger"):
        task_to_record(make(trigger=Odd(seconds=1)))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"fn": "tests.nowhere:job"}, "cannot be imported"),
        ({"fn": f"{__name__}:gone"}, "moved or renamed"),
        ({"trigger": ["no-such-trigger", {}]}, "trigger alias 'no-such-trigger'"),
        ({"trigger": ["interval", {"version": 99}]}, "cannot be rebuilt"),
        ({"version": RECORD_VERSION + 1}, "newer than this asyncz reads"),
        ({"format": "other"}, "not an asyncz task record"),
        ({"max_instances": 0}, "not valid"),
        ({"args": "x"}, "'args'"),
    ],
)
def test_restore_failures_say_why(change: dict[str, object], reason: str) -> None:
    record = task_to_record(make())
    record.update(change)
    with pytest.raises(TaskRestoreError, match=reason):
        record_to_task(record)


#: Where pack_record puts a record's fields.
PACKED_AT = {"format": 0, "version": 1, "fn": 4, "args": 5, "max_instances": 11}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"fn": "tests.nowhere:job"}, "cannot be imported"),
        ({"version": RECORD_VERSION + 1}, "newer than this asyncz reads"),
        ({"format": "other"}, "not an asyncz task record"),
        ({"max_instances": 0}, "not valid"),
        ({"args": "x"}, "'args'"),
    ],
)
def test_packed_restore_failures_say_why(change: dict[str, object], reason: str) -> None:
    packed = list(pack_record(task_to_record(make())))
    for key, value in change.items():
        packed[PACKED_AT[key]] = value
    with pytest.raises(TaskRestoreError, match=reason):
        record_to_task(tuple(packed))


def test_pickle_writes_packed_records_and_still_reads_dicts() -> None:
    task = make(args=(1, "x"), kwargs={"k": [1]}, timeout=3)
    record = task_to_record(task)
    packed = pack_record(record)
    assert unpack_record(packed) == record
    serializer = PickleSerializer()
    assert pickle.loads(serializer.dumps(record)) == packed
    earlier = pickle.dumps(record)  # how records were pickled before the packed form
    for data in (serializer.dumps(record), earlier):
        back = record_to_task(serializer.loads(data))
        assert task_to_record(back) == record
    # A packed record of a newer layout is recognised as newer, not as foreign data.
    newer = (*packed[:1], RECORD_VERSION + 1, *packed[2:], "a field of the future")
    with pytest.raises(TaskRestoreError, match="newer than this asyncz reads"):
        record_to_task(newer)
    for foreign in ((), ("other", 1), packed[:-1]):
        with pytest.raises(TaskRestoreError, match="not an asyncz task record"):
            record_to_task(foreign)


def test_json_refuses_what_it_cannot_keep_at_add_time() -> None:
    record = task_to_record(make(args=(datetime.now(UTC),)))
    with pytest.raises(SerializationError, match="datetime"):
        JSONSerializer().dumps(record)
    with pytest.raises(SerializationError, match="non-string key"):
        JSONSerializer().dumps(task_to_record(make(kwargs={"a": {1: 2}})))
    with pytest.raises(SerializationError, match="cannot represent"):
        JSONSerializer().dumps(task_to_record(make(args=(float("nan"),))))
    assert b'"fn":"tests.plugins.stores.test_records:job"' in JSONSerializer().dumps(
        task_to_record(make())
    )


def test_pickle_refuses_unpicklable_arguments() -> None:
    with pytest.raises(SerializationError, match="picklable"):
        PickleSerializer().dumps(task_to_record(make(args=(lambda: 1,))))
    with pytest.raises(ValueError, match="not a task record"):
        PickleSerializer().loads(pickle.dumps([1]))


def test_signing_detects_tampering_and_rotates_keys() -> None:
    signer = Protection(signing_key="k1")
    sealed = signer.seal(b"payload")
    assert sealed.startswith(b"AZS1") and signer.open(sealed) == b"payload"
    with pytest.raises(ProtectionError, match="does not match"):
        signer.open(sealed[:-1] + b"X")
    with pytest.raises(ProtectionError, match="does not match"):
        Protection(signing_key="other").open(sealed)
    assert Protection(signing_key=["k2", "k1"]).open(sealed) == b"payload"
    with pytest.raises(ProtectionError, match="no signing key"):
        Protection().open(sealed)
    with pytest.raises(ProtectionError, match="neither signed nor encrypted"):
        signer.open(b"plain")
    assert Protection(signing_key="k1", accept_unprotected=True).open(b"plain") == b"plain"


def test_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCZ_STORE_SIGNING_KEY", "from-env")
    sealed = Protection().seal(b"x")
    assert Protection(signing_key="from-env").open(sealed) == b"x"


def test_encryption() -> None:
    pytest.importorskip("cryptography", reason="encryption needs the 'encryption' extra")
    box = Protection(encryption_key="secret")
    sealed = box.seal(b"payload")
    assert sealed.startswith(b"AZE1") and b"payload" not in sealed
    assert box.open(sealed) == b"payload"
    with pytest.raises(ProtectionError, match="cannot be decrypted"):
        Protection(encryption_key="wrong").open(sealed)
    with pytest.raises(ProtectionError, match="no encryption key"):
        Protection().open(sealed)
    assert Protection(encryption_key=["new", "secret"]).open(sealed) == b"payload"


def test_bad_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="signing_key"):
        Protection(signing_key="")
