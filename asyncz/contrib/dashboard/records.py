"""What the dashboard's memory storages share: a bounded, thread-safe list of records and the
newest-first search over it.

Here: :func:`positive`, :func:`newest_matching` and :class:`BoundedRecords`. The log, audit and
event storages are :class:`BoundedRecords`; the run history, which also rewrites records in
place, uses :func:`newest_matching` over its own index.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

R = TypeVar("R")


def positive(name: str, value: Any) -> int:
    """``value`` if it is a whole number of at least 1, else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def newest_matching(
    records: Iterable[R],
    *,
    equal: Mapping[str, Any],
    q: str | None,
    matches: Callable[[R, str], bool],
    limit: int,
    keep: Callable[[R], bool] | None = None,
) -> list[R]:
    """The first ``limit`` of ``records`` (give them newest first) whose attributes equal every
    value of ``equal`` that is given (``None`` and ``""`` mean "any"), that ``keep`` accepts, and
    that ``matches`` the lower-cased search text ``q``."""
    wanted = [(name, value) for name, value in equal.items() if value is not None and value != ""]
    needle = q.strip().lower() if q else ""
    found: list[R] = []
    for record in records:
        if any(getattr(record, name) != value for name, value in wanted):
            continue
        if keep is not None and not keep(record):
            continue
        if needle and not matches(record, needle):
            continue
        found.append(record)
        if len(found) >= limit:
            break
    return found


class BoundedRecords(Generic[R]):
    """The newest ``maxlen`` records in memory, for this process only; thread-safe. When full,
    each new record pushes out the oldest one."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self.maxlen = positive("maxlen", maxlen)
        self._records: collections.deque[R] = collections.deque(maxlen=self.maxlen)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._records)

    def _keep(self, record: R) -> None:
        with self._lock:
            self._records.append(record)

    def _newest(
        self,
        *,
        equal: Mapping[str, Any],
        q: str | None,
        matches: Callable[[R, str], bool],
        limit: int,
        keep: Callable[[R], bool] | None = None,
    ) -> list[R]:
        positive("limit", limit)
        with self._lock:
            records = list(self._records)
        return newest_matching(
            reversed(records), equal=equal, q=q, matches=matches, limit=limit, keep=keep
        )

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


S = TypeVar("S")


class ProcessDefault(Generic[S]):
    """The process-wide default of one kind of storage: made on first use, replaced by the
    storage given (checked for the methods the dashboard calls)."""

    def __init__(self, kind: str, make: Callable[[], S], methods: tuple[str, ...]) -> None:
        self.kind = kind
        self.make = make
        self.methods = methods
        self._lock = threading.Lock()
        self._current: S | None = None

    def get(self, storage: S | None = None) -> S:
        with self._lock:
            if storage is not None:
                missing = [m for m in self.methods if not callable(getattr(storage, m, None))]
                if missing:
                    wanted = " and ".join(f"{m}(...)" for m in self.methods)
                    raise TypeError(f"{self.kind} needs {wanted} methods, got {storage!r}")
                self._current = storage
            elif self._current is None:
                self._current = self.make()
            return self._current
