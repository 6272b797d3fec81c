"""Where the dashboard keeps captured log records, and how the Logs page reads them.

Here: :class:`LogEntry` (one captured record, plain data only), the :class:`LogStorage`
protocol, the bounded in-memory :class:`MemoryLogStorage`, and the process-wide default storage
(:func:`get_log_storage`). Not here: turning :mod:`logging` records into entries, which is
:mod:`asyncz.contrib.dashboard.logs.handler`'s job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

import attrs

from asyncz.contrib.dashboard.records import BoundedRecords, ProcessDefault

__all__ = [
    "EXTRA_MAX",
    "LEVEL_NAMES",
    "LogEntry",
    "LogStorage",
    "MemoryLogStorage",
    "get_log_storage",
    "normalize_level",
]

UTC = timezone.utc

#: The level names a query accepts (upper case; lower case is accepted too).
LEVEL_NAMES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: Extra values an entry keeps as they are; anything else is kept as its ``repr``.
_PLAIN = (int, float, bool, type(None))
#: Longer extra strings are cut to this many characters.
EXTRA_MAX = 1000


def _plain_value(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= EXTRA_MAX else text[: EXTRA_MAX - 3] + "..."


def _plain_extra(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    if not extra:
        return {}
    return {str(k): _plain_value(v) for k, v in extra.items()}


def _optional_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


@attrs.frozen(kw_only=True)
class LogEntry:
    """One captured log record, as plain data (no record, exception or argument objects).

    :var ts: when it was logged (aware, UTC)
    :var level: the level name (``"INFO"``)
    :var levelno: the numeric level (``20``)
    :var message: the formatted message (with the traceback appended, if any)
    :var logger: the logger's name
    :var task_id: the task it belongs to, if known
    :var run_id: the run it belongs to, if known
    :var scheduler_identity: the scheduler that ran the task, if known
    :var extra: other extras of the record: numbers, booleans and ``None`` as given, anything
        else as a string (its ``repr`` unless a string), cut to :data:`EXTRA_MAX` characters
    """

    ts: datetime = attrs.field(factory=lambda: datetime.now(UTC))
    level: str = "INFO"
    levelno: int = logging.INFO
    message: str = ""
    logger: str = ""
    task_id: str | None = attrs.field(default=None, converter=_optional_str)
    run_id: str | None = attrs.field(default=None, converter=_optional_str)
    scheduler_identity: str | None = attrs.field(default=None, converter=_optional_str)
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_plain_extra)

    @property
    def timestamp(self) -> datetime:
        """Another name for :attr:`ts`."""
        return self.ts

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the time as an ISO 8601 string), for JSON output."""
        data = attrs.asdict(self)
        data["ts"] = self.ts.isoformat()
        data["extra"] = dict(self.extra)
        return data


@runtime_checkable
class LogStorage(Protocol):
    """**Protocol**: what the dashboard needs of a log storage.

    ``append`` is called from any thread (executor threads, the event loop, request handlers)
    and must not block for long. ``query`` returns the newest entries first.
    """

    def append(self, entry: LogEntry) -> None: ...

    def query(
        self,
        task_id: str | None = None,
        run_id: str | None = None,
        level: str | None = None,
        q: str | None = None,
        limit: int = 200,
    ) -> Iterable[LogEntry]: ...


def normalize_level(level: str | int | None) -> int | None:
    """The numeric level for a level name (any case) or number; ``None``/``""`` for none.

    Raises ``ValueError`` naming the accepted names for anything else.
    """
    if level is None or level == "":
        return None
    if isinstance(level, bool):
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVEL_NAMES)}")
    if isinstance(level, int):
        return level
    if isinstance(level, str):
        name = level.strip().upper()
        if name == "WARN":
            name = "WARNING"
        if name in LEVEL_NAMES:
            return int(getattr(logging, name))
        if name.isdigit():
            return int(name)
    raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVEL_NAMES)}")


class MemoryLogStorage(BoundedRecords[LogEntry]):
    """The newest ``maxlen`` entries in memory, for this process only; thread-safe.

    When full, each new entry pushes out the oldest one.
    """

    def append(self, entry: LogEntry) -> None:
        if not isinstance(entry, LogEntry):
            raise TypeError(f"a log storage keeps LogEntry objects, got {entry!r}")
        self._keep(entry)

    def query(
        self,
        task_id: str | None = None,
        run_id: str | None = None,
        level: str | int | None = None,
        q: str | None = None,
        limit: int = 200,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[LogEntry]:
        """The newest entries first, at most ``limit``, matching every filter given.

        ``level`` matches entries of exactly that level (a name such as ``"ERROR"``); ``q``
        is searched, ignoring case, in the message, the logger name, the task and run ids and
        the scheduler identity; ``since``/``until`` bound the time (inclusive).
        """
        levelno = normalize_level(level)

        def in_time(entry: LogEntry) -> bool:
            return (since is None or entry.ts >= since) and (until is None or entry.ts <= until)

        return self._newest(
            equal={"task_id": task_id, "run_id": run_id, "levelno": levelno},
            q=q,
            matches=_matches,
            limit=limit,
            keep=in_time if since is not None or until is not None else None,
        )


def _matches(entry: LogEntry, needle: str) -> bool:
    for text in (
        entry.message,
        entry.logger,
        entry.task_id,
        entry.run_id,
        entry.scheduler_identity,
    ):
        if text and needle in text.lower():
            return True
    return False


_defaults: ProcessDefault[LogStorage] = ProcessDefault(
    "a log storage", MemoryLogStorage, ("append", "query")
)


def get_log_storage(storage: LogStorage | None = None) -> LogStorage:
    """The process-wide default log storage; passing ``storage`` makes it the default.

    The first call without one creates a :class:`MemoryLogStorage`.
    """
    return _defaults.get(storage)
