"""What every persistent store shares: encoding tasks to bytes, and quarantine.

``PersistentStore`` turns a task into a record (:mod:`asyncz.core.records`), the record into bytes
with a serializer plugin (``pickle`` by default, ``json``), and seals the bytes (signing or
encryption, :mod:`asyncz.plugins.serializers.protection`) — and back.

**Quarantine, never delete.** A record that cannot be restored (its callable moved, its trigger
plugin missing, a wrong key, a newer format) is skipped and left exactly as it is. It is reported
once per task and reason — an error log line and a ``TASK_QUARANTINED`` event with the id and the
reason — and listed by :meth:`PersistentStore.get_quarantined`. Every later read that meets it
(``get_all_tasks``, ``lookup_task``, ``get_due_tasks``, ``acquire_due_tasks``) tries it again, so
it loads as soon as the cause is fixed, and is then back in service. A due quarantined task stays
leased to whoever last tried it until the lease runs out, so it is retried once per lease period,
not in a busy loop.

A task this store instance knows to be quarantined does not count for
:meth:`get_next_run_time`: neither its run time nor its lease expiry wakes the scheduler, since
waking for it would only give the same error again (the usual fixes — deploying the code, adding
the key — mean a restart). The quarantine is this instance's knowledge, cleared at every start
(the first pass then tries every due record again); the scheduler still meets a quarantined task
whenever it wakes for another task or for the store's poll while that task is due, and it is in
service again from the first read that restores it. Writing a task (``add_task``,
``update_task``) or deleting it through this instance takes it out of quarantine at once.
"""

from __future__ import annotations

import inspect
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import timezone, tzinfo
from typing import Any

from asyncz.core import events
from asyncz.core.converters import utc_timestamp_us
from asyncz.core.errors import SerializationError, TaskRestoreError
from asyncz.core.protocols import BaseStore, Serializer
from asyncz.core.records import (
    TASK_STATE_ENTITY,
    TASK_STATE_ENVELOPE_VERSION,
    RecordReader,
    TaskStateEnvelope,
    from_timestamp_us,
    record_summary,
    task_to_record,
)
from asyncz.core.task import Task, TaskState
from asyncz.plugins.serializers.protection import Protection, ProtectionError

__all__ = [
    "TASK_STATE_ENTITY",
    "TASK_STATE_ENVELOPE_VERSION",
    "PersistentStore",
    "TaskStateEnvelope",
    "open_envelope",
    "order_key",
]


#: At most one wake-up per this many seconds from other instances' notifications.
NOTIFY_COALESCE_SECONDS = 0.05


def open_envelope(envelope: TaskStateEnvelope) -> Any:
    """The payload of ``envelope``, after checking it is one this asyncz reads.

    ``ShapeMigrationError`` for another entity or version, ``ShapeNotFoundError`` for a Shape
    name not registered here (a record never falls back to another Shape).
    """
    from asyncz.shapes import ShapeMigrationError, ShapeRegistry

    if envelope.entity != TASK_STATE_ENTITY:
        raise ShapeMigrationError(
            f"the stored envelope holds a {envelope.entity!r}, not a {TASK_STATE_ENTITY!r}"
        )
    if envelope.version != TASK_STATE_ENVELOPE_VERSION:
        raise ShapeMigrationError(
            f"the stored envelope has version {envelope.version!r}; this asyncz reads version "
            f"{TASK_STATE_ENVELOPE_VERSION} (a newer asyncz wrote it?)"
        )
    ShapeRegistry.get_class(envelope.shape)
    return envelope.payload


class PersistentStore(BaseStore):
    """Base class of stores that keep tasks as bytes.

    :param serializer: a serializer plugin alias (``"pickle"``, ``"json"``) or an object with
        ``dumps``/``loads``
    :param signing_key: sign records with HMAC-SHA256 (default: ``ASYNCZ_STORE_SIGNING_KEY``)
    :param encryption_key: encrypt records with AES-GCM (default:
        ``ASYNCZ_STORE_ENCRYPTION_KEY``; needs ``cryptography``)
    :param accept_unprotected: also read records that are neither signed nor encrypted
    :param poll_interval: seconds after which the scheduler looks at the store again even if
        nothing changed locally (other processes may write to it); ``None`` never
    :param pickle_protocol: the pickle protocol of the default serializer (Asyncz's option)
    """

    def __init__(
        self,
        *,
        serializer: str | Serializer = "pickle",
        signing_key: Any = None,
        encryption_key: Any = None,
        accept_unprotected: bool = False,
        poll_interval: float | None = 5.0,
        cache_size: int = 100_000,
        pickle_protocol: int | None = None,
    ) -> None:
        super().__init__()
        import pickle

        #: Asyncz's attribute: the pickle protocol records are written with (pickle serializer)
        self.pickle_protocol = (
            pickle.HIGHEST_PROTOCOL if pickle_protocol is None else pickle_protocol
        )
        if pickle_protocol is not None and serializer == "pickle":
            # Asyncz's option, for the default serializer
            from asyncz.plugins.serializers.pickle import PickleSerializer

            serializer = PickleSerializer(pickle_protocol)
        if not isinstance(serializer, str) and not (
            callable(getattr(serializer, "dumps", None))
            and callable(getattr(serializer, "loads", None))
        ):
            raise TypeError(
                f"serializer must be a serializer plugin alias such as 'pickle' or 'json', or "
                f"an object with dumps() and loads(), got {serializer!r}"
            )
        if poll_interval is not None and not (
            isinstance(poll_interval, (int, float)) and poll_interval > 0
        ):
            raise ValueError(
                f"poll_interval must be a number of seconds > 0 or None, got {poll_interval!r}"
            )
        self.poll_interval = float(poll_interval) if poll_interval is not None else None
        self._serializer_spec = serializer
        self._protection_options = (signing_key, encryption_key, accept_unprotected)
        self._serializer: Serializer | None = None
        self._protection: Protection | None = None
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size must be an integer >= 0, got {cache_size!r}")
        self.cache_size = cache_size
        # id -> (stored bytes, callable reference, trigger alias, record's run time, task)
        self._cache: dict[str, tuple[bytes, str, str, int | None, Task]] = {}
        self._quarantined: dict[str, str] = {}
        self._quarantine_lock = threading.Lock()
        self._token = uuid.uuid4().hex
        # Coalescing of other instances' notifications (see notified()).
        self._notify_lock = threading.Lock()
        self._notify_last_at = float("-inf")
        self._notify_last_key: int | None = None
        self._notify_held: tuple[int, Any] | None = None
        self._notify_timer: threading.Timer | None = None

    # -- codec -----------------------------------------------------------------------------

    @property
    def registry(self) -> Any:
        registry = getattr(self.scheduler, "plugins", None)
        if registry is None:
            from asyncz.core.plugins import default_registry

            registry = default_registry()
        return registry

    def setup_codec(self) -> None:
        """Resolve the serializer and read the keys (at start, so env changes are seen)."""
        spec = self._serializer_spec
        if isinstance(spec, str):
            self._serializer = self.registry.resolve("serializer", spec)()
        else:
            self._serializer = spec
        self._protection = Protection(*self._protection_options)
        self._cache.clear()  # keys may have changed: every record is checked afresh

    def _codec(self) -> tuple[Serializer, Protection]:
        if self._serializer is None or self._protection is None:
            self.setup_codec()
        assert self._serializer is not None and self._protection is not None
        return self._serializer, self._protection

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self.setup_codec()
        with self._quarantine_lock:
            # Tried afresh (and reported again) from this start on: code, plugins or keys may
            # have changed, and until a read meets it again every record counts for the
            # next wake-up.
            self._quarantined.clear()

    def check_task(self, task: Task) -> None:
        """Raise :class:`SerializationError` if ``task`` could not be stored (no I/O)."""
        self.encode(task)

    def encode_task(self, task: Task) -> bytes:
        """The bytes to store for ``task``; ``SerializationError`` saying why it cannot be."""
        return self.encode(task)[0]

    def encode(self, task: Task) -> tuple[bytes, str, str, int | None]:
        """The bytes to store and what :meth:`stored` needs to remember them."""
        serializer, protection = self._codec()
        record = task_to_record(task, self.registry)
        try:
            data = protection.seal(serializer.dumps(record))
        except SerializationError as exc:
            fn = task.fn
            if not (inspect.ismethod(fn) and not inspect.isclass(fn.__self__)):
                raise
            raise SerializationError(
                f"the callable of task {task.id!r} is {fn!r}, a method bound to an instance "
                f"that no module names; persistent stores keep it as "
                f"{record['fn']!r} with the instance as first argument, which the "
                f"{type(serializer).__name__} cannot encode ({exc}). Use a module-level "
                "function, a classmethod, a method of a module-level instance, or make the "
                "instance encodable"
            ) from exc
        return data, record["fn"], record["trigger"][0], record["next_run_time"]

    def stored(self, task: Task, encoded: tuple[bytes, str, str, int | None]) -> None:
        """Call after ``task`` was written as ``encoded``: binds it and remembers the bytes."""
        self.fix_task(task)
        self._remember(task, *encoded)
        if self._quarantined:  # a record this instance just wrote is one it can read
            self._back_in_service(task.id)

    # -- decoded-record cache ------------------------------------------------------------------
    #
    # Decoding a record costs far more than reading it. The store remembers, per id, the exact
    # bytes it last wrote or decoded and the task they gave; the same bytes read again give that
    # task back (its run time set from the index) after checking, once per batch, that its
    # callable reference and trigger alias still resolve to the same objects — so a moved
    # function or a disabled plugin is noticed as without the cache. Any other bytes (written
    # by another process, another key) are decoded in full.

    def _remember(
        self, task: Task, data: bytes, fn_ref: str, alias: str, next_us: int | None
    ) -> None:
        if not self.cache_size:
            return
        cache = self._cache
        if len(cache) >= self.cache_size and task.id not in cache:
            try:
                del cache[next(iter(cache))]  # the oldest entry
            except (StopIteration, KeyError, RuntimeError):
                pass
        if type(data) is not bytes:
            data = bytes(data)
        cache[task.id] = (data, fn_ref, alias, next_us, task)

    def forget(self, task_ids: Iterable[str] | None = None) -> None:
        """Drop cached tasks (all of them with ``None``), and their quarantine: stores call it
        for tasks they delete."""
        if task_ids is None:
            self._cache.clear()
            if self._quarantined:
                with self._quarantine_lock:
                    self._quarantined.clear()
        else:
            task_ids = list(task_ids)
            for task_id in task_ids:
                self._cache.pop(task_id, None)
            if self._quarantined:
                with self._quarantine_lock:
                    for task_id in task_ids:
                        self._quarantined.pop(task_id, None)

    def _cached(
        self, task_id: str, data: bytes, next_run_us: int | bool | None, reader: RecordReader
    ) -> Task | None:
        entry = self._cache.get(task_id)
        if entry is None or entry[0] != data:
            return None
        _, fn_ref, alias, record_us, task = entry
        if reader.callable(fn_ref) is not task.fn:
            return None
        if reader.trigger_class(alias) is not type(task.trigger):
            return None
        run_us = record_us if next_run_us is False else next_run_us
        zone = getattr(task.trigger, "timezone", None)
        next_time = from_timestamp_us(
            run_us if isinstance(run_us, int) and not isinstance(run_us, bool) else None,
            zone if isinstance(zone, tzinfo) else timezone.utc,
        )
        object.__setattr__(task, "next_run_time", next_time)
        return task

    def reader(self) -> RecordReader:
        """A reader for one batch of records (it caches lookups for that batch only)."""
        return RecordReader(self.registry, scheduler=self.scheduler, store_alias=self.alias)

    def decode_task(
        self,
        task_id: str,
        data: bytes,
        next_run_us: int | bool | None = False,
        reader: RecordReader | None = None,
    ) -> Task:
        """The task stored as ``data``; ``TaskRestoreError`` saying why it cannot be restored.

        ``next_run_us`` is the store's own index of the run time, which overrides the record's.
        """
        serializer, protection = self._codec()
        return self._decode(
            task_id, data, next_run_us, reader or self.reader(), serializer, protection
        )

    def _decode(
        self,
        task_id: str,
        data: bytes,
        next_run_us: int | bool | None,
        reader: RecordReader,
        serializer: Serializer,
        protection: Protection,
    ) -> Task:
        """:meth:`decode_task` with the batch's reader and codec (one row of many)."""
        if type(data) is not bytes:
            data = bytes(data)
        entry = self._cache.get(task_id)
        if entry is not None and entry[0] == data:
            cached = self._cached(task_id, data, next_run_us, reader)
            if cached is not None:
                return cached
        try:
            payload = protection.open(data)
        except ProtectionError as exc:
            raise TaskRestoreError(str(exc)) from None
        try:
            record = serializer.loads(payload)
        except Exception as exc:
            raise TaskRestoreError(
                f"the {type(serializer).__name__} cannot decode it ({type(exc).__name__}: {exc}); "
                "was it written with another serializer or is it damaged?"
            ) from None
        if isinstance(record, (TaskStateEnvelope, TaskState)):
            # Asyncz's forms: not cached (rare, and they hold no record summary)
            task = self._task_from_state(record, next_run_us, reader, strict=False)
            if task.id != task_id:
                raise TaskRestoreError(
                    f"the record stored under this id belongs to task {task.id!r} (copied by hand?)"
                )
            return task
        task = reader.task(record, next_run_us)
        if task.id != task_id:
            raise TaskRestoreError(
                f"the record stored under this id belongs to task {task.id!r} (copied by hand?)"
            )
        self._remember(task, data, *record_summary(record))
        return task  # the reader bound it to this store and scheduler

    # -- Asyncz's record forms -------------------------------------------------------------
    #
    # asyncz writes records (asyncz.core.records). A pickled TaskState (what Task.__getstate__
    # gives, and what Asyncz wrote before its envelopes) or an Asyncz TaskStateEnvelope around a
    # TaskState or a record is still read, off the hot path: the fast reader refuses them and
    # the single-record decoder comes here.

    def _task_from_state(
        self, state: Any, next_run_us: int | bool | None, reader: RecordReader, *, strict: bool
    ) -> Task:
        """The task of a TaskState or a TaskStateEnvelope; with ``strict`` the envelope's
        Shape errors are raised as they are, otherwise as :class:`TaskRestoreError`."""
        if type(state) is TaskStateEnvelope:
            from asyncz.shapes import ShapeError

            try:
                state = open_envelope(state)
            except ShapeError as exc:
                if strict:
                    raise
                raise TaskRestoreError(str(exc)) from None
        if not isinstance(state, TaskState):
            return reader.task(state, next_run_us)
        try:
            task = Task.__new__(Task)
            task.__setstate__(state)
        except Exception as exc:
            raise TaskRestoreError(f"its stored TaskState is not a valid task: {exc}") from None
        if next_run_us is not False:
            zone = getattr(task.trigger, "timezone", None)
            task.next_run_time = from_timestamp_us(
                next_run_us if isinstance(next_run_us, int) else None,
                zone if isinstance(zone, tzinfo) else timezone.utc,
            )
        task.pending, task.submitted = False, True
        return self.fix_task(task)

    def conditional_encrypt(self, data: bytes) -> bytes:
        """``data`` sealed as records are stored (signed or encrypted when keys are set;
        unchanged otherwise). Asyncz's name."""
        return self._codec()[1].seal(data)

    def conditional_decrypt(self, data: bytes) -> bytes:
        """The payload of sealed ``data`` (:meth:`conditional_encrypt`'s inverse). Asyncz's
        name; ``TaskRestoreError`` for data that fails its check."""
        try:
            return self._codec()[1].open(data)
        except ProtectionError as exc:
            raise TaskRestoreError(str(exc)) from None

    def rebuild_task(self, data: bytes) -> Task:
        """The task stored as ``data`` (sealed, serialized bytes), bound to this store.

        Asyncz's name. An Asyncz envelope naming a Shape not registered here raises
        ``ShapeNotFoundError``, one of another version ``ShapeMigrationError``; anything else
        that cannot be restored ``TaskRestoreError``.
        """
        serializer = self._codec()[0]
        payload = self.conditional_decrypt(data)
        try:
            record = serializer.loads(payload)
        except Exception as exc:
            raise TaskRestoreError(
                f"the {type(serializer).__name__} cannot decode it ({type(exc).__name__}: {exc})"
            ) from None
        return self._task_from_state(record, False, self.reader(), strict=True)

    # -- quarantine ------------------------------------------------------------------------

    def restore(
        self,
        task_id: str,
        data: bytes,
        next_run_us: int | bool | None,
        reports: list[tuple[str, str]],
        reader: RecordReader | None = None,
    ) -> Task | None:
        """The task, or ``None`` when it cannot be restored (then ``(id, reason)`` is appended
        to ``reports``, to be passed to :meth:`report` once the store's transaction is over)."""
        try:
            task = self.decode_task(task_id, data, next_run_us, reader)
        except TaskRestoreError as exc:
            reports.append((task_id, str(exc)))
            return None
        if self._quarantined:
            self._back_in_service(task_id)
        return task

    def _quarantined_ids(self) -> frozenset[str]:
        """The ids this instance knows to be quarantined (no I/O; cleared at start). They do
        not count for :meth:`get_next_run_time`; stores read it only when ``_quarantined`` is
        not empty, so the common case costs nothing."""
        with self._quarantine_lock:
            return frozenset(self._quarantined)

    def _back_in_service(self, task_id: str) -> None:
        with self._quarantine_lock:
            reason = self._quarantined.pop(task_id, None)
        if reason is not None:
            self.logger.info("Task %r can be restored again and is back in service", task_id)

    def report(self, reports: Iterable[tuple[str, str]]) -> None:
        """Log and announce newly quarantined tasks; each (task, reason) only once.

        Called outside any store transaction: a listener may well call back into the store.
        """
        for task_id, reason in reports:
            with self._quarantine_lock:
                if self._quarantined.get(task_id) == reason:
                    continue
                self._quarantined[task_id] = reason
            self.logger.error(
                "Task %r in store %r cannot be restored and is quarantined (left in the store "
                "untouched, retried later; the other tasks keep running): %s",
                task_id,
                self.alias,
                reason,
            )
            dispatch = getattr(self.scheduler, "dispatch_event", None)
            if dispatch is not None:
                dispatch(
                    events.TaskQuarantinedEvent(
                        code=events.TASK_QUARANTINED,
                        alias=self.alias,
                        task_id=task_id,
                        store=self.alias,
                        scheduler_identity=getattr(self.scheduler, "identity", None),
                        reason=reason,
                    )
                )

    def restore_all(self, rows: Iterable[tuple[str, bytes, int | bool | None]]) -> list[Task]:
        """Restore ``(id, data, next_run_us)`` rows, quarantining (and reporting) failures."""
        reports: list[tuple[str, str]] = []
        reader = self.reader()
        serializer, protection = self._codec()
        decode = self._decode
        task_of, loads, unseal = reader.task, serializer.loads, protection.open
        cache, cache_size = self._cache, self.cache_size
        tasks: list[Task] = []
        append = tasks.append
        # The loop of restore(), unrolled: loading thousands of due tasks is a hot path.
        for task_id, data, next_run_us in rows:
            # _decode's common case inline: bytes not seen before, restored, and room in the
            # cache. Anything else (a failure included, which _decode then explains) goes
            # through _decode.
            if type(data) is bytes and task_id not in cache and len(cache) < cache_size:
                try:
                    record = loads(unseal(data))
                    task = task_of(record, next_run_us)
                except Exception:
                    task = None
                if task is not None and task.id == task_id:
                    if type(record) is tuple:  # packed: record_summary without the call
                        cache[task_id] = (data, record[4], record[7], record[14], task)
                    else:
                        cache[task_id] = (data, *record_summary(record), task)
                    append(task)
                    continue
            try:
                append(decode(task_id, data, next_run_us, reader, serializer, protection))
            except TaskRestoreError as exc:
                reports.append((task_id, str(exc)))
        if self._quarantined:
            for task in tasks:
                self._back_in_service(task.id)
        self.report(reports)
        return tasks

    def iter_records(self) -> Iterator[tuple[str, bytes, int | bool | None]]:
        """Every stored ``(id, data, next_run_us)``; stores implement this for inspection."""
        raise NotImplementedError

    def get_quarantined(self) -> dict[str, str]:
        """Every stored task that cannot be restored now, with the reason (reads every record)."""
        found: dict[str, str] = {}
        reports: list[tuple[str, str]] = []
        reader = self.reader()
        for task_id, data, next_run_us in self.iter_records():
            if self.restore(task_id, data, next_run_us, reports, reader) is None:
                found[task_id] = reports[-1][1]
        self.report(reports)
        return found

    # -- telling other schedulers about changes ---------------------------------------------
    #
    # Stores that can (Redis pub/sub, PostgreSQL LISTEN/NOTIFY) announce added and updated
    # tasks, so that a scheduler sharing the store wakes up at once instead of at its next
    # poll. Best effort: the poll stays as the safety net. A store ignores its own messages
    # (its scheduler was already woken by the change itself).

    def notification(self, tasks: Iterable[Task]) -> str | None:
        """The message announcing ``tasks`` (None when none of them is scheduled)."""
        times = [t.next_run_time for t in tasks if t.next_run_time is not None]
        if not times:
            return None
        return f"{self._token} {min(utc_timestamp_us(t) for t in times)}"

    def notified(self, message: str | bytes) -> None:
        """Handle a message from another store instance: wake the scheduler up.

        A storm of messages (another process adding thousands of tasks one by one) gives at
        most one wake-up per :data:`NOTIFY_COALESCE_SECONDS`: a message within that time of the
        last wake-up is held, and the earliest moment held is passed on when the time is up
        (at once if it is earlier than the moment last passed on).
        """
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        token, _, when = message.partition(" ")
        if token == self._token:
            return
        if getattr(self.scheduler, "wakeup", None) is None:
            return
        try:
            moment = from_timestamp_us(int(when)) if when else None
        except ValueError:
            moment = None
        key = utc_timestamp_us(moment) if moment is not None else -1  # None: look now
        with self._notify_lock:
            now = time.monotonic()
            last_key = self._notify_last_key
            if now - self._notify_last_at >= NOTIFY_COALESCE_SECONDS or (
                last_key is not None and key < last_key
            ):
                self._notify_last_at, self._notify_last_key = now, key
                forward = True
            else:
                if self._notify_held is None or key < self._notify_held[0]:
                    self._notify_held = (key, moment)
                forward = False
                if self._notify_timer is None:
                    timer = threading.Timer(
                        NOTIFY_COALESCE_SECONDS - (now - self._notify_last_at),
                        self._forward_held,
                    )
                    timer.daemon = True
                    self._notify_timer = timer
                    timer.start()
        if forward:
            self._wake(moment)

    def _forward_held(self) -> None:
        with self._notify_lock:
            held, self._notify_held = self._notify_held, None
            self._notify_timer = None
            if held is None:
                return
            self._notify_last_at, self._notify_last_key = time.monotonic(), held[0]
        self._wake(held[1])

    def _wake(self, moment: Any) -> None:
        wakeup = getattr(self.scheduler, "wakeup", None)
        if wakeup is not None:
            wakeup(moment)

    def add_tasks(self, tasks: Sequence[Task]) -> None:
        """Add several tasks (stores with transactions do it in one)."""
        for task in tasks:
            self.add_task(task)  # type: ignore[attr-defined]


def order_key(task: Task) -> tuple[bool, int, str]:
    """Paused last, then by next run time, ties by id."""
    next_time = task.next_run_time
    return (next_time is None, utc_timestamp_us(next_time) if next_time else 0, task.id)
