"""The ``pickle`` serializer: the default, as in Asyncz; any picklable argument can be stored.

Only the task's arguments can carry Python objects: the rest of a record is plain data, so a
record does not break when a class of asyncz itself changes. Records are written in their packed
form (:func:`asyncz.core.records.pack_record`, a tuple), which unpickles in a third of the time
of the dict; records written as dicts are still read. Unpickling runs code chosen by whoever
wrote the bytes: give stores that other parties can write to a ``signing_key`` (or use ``json``).
"""

from __future__ import annotations

import pickle
from typing import Any

from asyncz.core.errors import SerializationError
from asyncz.core.hookspecs import hookimpl
from asyncz.core.records import RECORD_FORMAT, TaskStateEnvelope, pack_record
from asyncz.core.task import TaskState
from asyncz.plugins.serializers.asyncz_records import is_asyncz_record, loads_asyncz_record

__all__ = ["PickleSerializer"]


class PickleSerializer:
    """Encodes records with :mod:`pickle`.

    :param protocol: the pickle protocol (default: the highest this Python has)
    """

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        if isinstance(protocol, bool) or not isinstance(protocol, int):
            raise TypeError(f"protocol must be an int, got {protocol!r}")
        self.protocol = protocol

    def dumps(self, state: dict[str, Any]) -> bytes:
        # Anything but a record (a third party's use of this class) is pickled as it is.
        is_record = isinstance(state, dict) and state.get("format") == RECORD_FORMAT
        packed = pack_record(state) if is_record else state
        try:
            return pickle.dumps(packed, self.protocol)
        except Exception as exc:
            raise SerializationError(
                f"the task cannot be pickled: {exc}; its arguments must be picklable"
            ) from exc

    def loads(self, data: bytes) -> dict[str, Any] | tuple[Any, ...]:
        if is_asyncz_record(data):  # written by Asyncz: its classes are read by stand-ins
            state = loads_asyncz_record(data)
        else:
            state = pickle.loads(data)
        if type(state) is tuple or isinstance(state, dict):  # a record: the hot path
            return state
        if type(state) is TaskStateEnvelope or type(state) is TaskState:
            return state  # type: ignore[return-value]  # Asyncz's forms: the store reads them
        raise ValueError(f"pickled data is a {type(state).__name__}, not a task record")

    def __repr__(self) -> str:
        return f"PickleSerializer(protocol={self.protocol})"


@hookimpl
def asyncz_register_serializers(register: Any) -> None:
    register("pickle", PickleSerializer)
