"""The ``redis`` store: records in a hash, run times in a sorted set, every change one Lua script.

Keys (``key_prefix`` defaults to ``"asyncz."``, so the first two are Asyncz's own key names):

* ``<prefix>tasks`` — HASH id -> encoded record
* ``<prefix>run_times`` — ZSET id -> next run time in microseconds since the epoch, for tasks
  that are scheduled and not leased (paused tasks are absent). Equal scores are ordered by
  member, which gives "ties by id" for free.
* ``<prefix>leases`` — ZSET id -> lease expiry (µs) of tasks handed to a scheduler
* ``<prefix>lease_info`` — HASH id -> ``"<run time µs>|<token>|<owner>"`` of those tasks (the
  token is hex, made fresh by each ``acquire_due_tasks`` call; the owner is the rest, so it may
  hold ``|``)
* ``<prefix>versions`` — HASH id -> the task's version: ``new_store_version()`` when added, plus
  one for every write of the task (``update_task``, and a release or fire that stores its next
  run time). Taking, renewing or ending a lease is not a write of the task.
* ``<prefix>instances`` — HASH identity -> JSON info of each registered scheduler
* ``<prefix>heartbeats`` — ZSET identity -> last heartbeat (µs, Redis's ``TIME``)
* ``<prefix>runs`` — HASH run key -> run record (below)
* ``<prefix>runs_by_time`` — ZSET run key -> scheduled time (µs): newest runs, retention
* ``<prefix>runs_by_task`` — ZSET run key -> 0: one task's runs by lexicographic range
* ``<prefix>started`` — HASH run key -> instance, of the runs whose status is ``started``
  (instance ``""``: its scheduler died and it waits for another to rerun it)
* ``<prefix>started_counts`` — HASH id -> how many of the task's runs are ``started`` (the
  cluster-wide ``max_instances`` check)
* ``<prefix>reruns`` — ZSET run key -> scheduled time (µs), of the runs waiting for a taker
* ``<prefix>meta`` — HASH: ``purged_at`` (µs), the last retention pass
* ``<prefix>rerun_tasks`` — HASH run key -> the task's record when it was fired, for the
  started runs of ``on_crash="rerun"`` tasks (a one-off task is deleted by its fire, yet must
  still be rerun if its scheduler dies); dropped when the run finishes or is taken for a rerun

A **run key** is ``"<n>:<id>\\x1f<scheduled µs, 17 digits>"`` with ``n`` the byte length of the
id in UTF-8: the length makes ``"<n>:<id>"`` a prefix of no other task's keys whatever the id
holds (``|``, ``:``, the separator), so one task's runs are the lexicographic range between
``"<n>:<id>\\x1f"`` and ``"<n>:<id>\\x20"`` in ``runs_by_task``, newest last.

A **run record** is
``"<status>\\x1f<attempt>\\x1f<fired µs>\\x1f<on_crash>\\x1f<instance>\\x1f<details>"``
where details is compact JSON (run id, started/finished µs, duration, error) written by
:meth:`RedisStore.finish_runs`, empty until then. The scripts change status, attempt, fired time
and instance without parsing JSON (Lua's JSON library rounds numbers to 14 digits); JSON never
holds a raw control character, so the instance is whatever lies between the fourth and the last
separator.

``fire_tasks`` (the release of a pass with its run records), ``finish_runs`` and the heartbeat's
reaping and retention purge are each one script call for the whole batch, reading and writing
each key with a few bulk commands rather than a few commands per task. ``remove_all_tasks``
clears the task keys only: run records and the instance registry stay.

Every change that touches more than one key runs as one Lua script (:mod:`.redis_scripts`), so it
is atomic on the server: no check-then-write race between schedulers sharing the keys, and no
half-applied change if a client dies. The store clock of the instance registry, lease renewal and
run records is ``TIME`` inside the scripts. Under Redis Cluster, give a prefix with a hash tag
(``"{asyncz}."``) so all the keys live in one slot.

Schedule changes (adds, and updates that change when a task runs) are announced on the pub/sub
channel ``<prefix>changes``; every store instance listens there (one thread) and wakes its
scheduler when another instance announces a change, so a task added by one process runs on time
in another without waiting for a poll.

The ``redis`` package is imported when a store is created, not when this module is imported, so
plugin discovery works without it.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone, tzinfo
from json.encoder import encode_basestring_ascii as _json_string
from typing import TYPE_CHECKING, Any

from asyncz.core.converters import datetime_from_us, utc_timestamp_us
from asyncz.core.errors import ConflictIdError, TaskConflictError, TaskLookupError
from asyncz.core.extras import missing_dependency
from asyncz.core.hookspecs import hookimpl
from asyncz.core.records import from_timestamp_us, new_store_version
from asyncz.core.runs import (
    ON_CRASH_POLICIES,
    Fire,
    FireResult,
    RunOutcome,
    RunRecord,
    summarize_error,
)
from asyncz.core.task import Task
from asyncz.plugins.stores import redis_scripts as scripts
from asyncz.plugins.stores.persistent import PersistentStore, order_key

if TYPE_CHECKING:
    import redis

__all__ = ["RedisStore"]

#: How many quarantined entries of each sorted set the next-run-time lookup reads past at first.
_SKIP_PAGE = 15
#: Retention: at most one purge pass this often (seconds), removing at most this many records.
_PURGE_EVERY = 300.0
_PURGE_BATCH = 10_000
_SEP = "\x1f"
_DAY = 86_400.0


def _member(value: Any) -> str:
    """A sorted-set member as a task id (bytes unless the client decodes responses)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value: Any) -> int:
    """A score or stored number (bytes or str) as an int; Redis writes large scores with an
    exponent."""
    try:
        return int(value)
    except ValueError:
        return int(float(value))


def _version(value: Any) -> int | None:
    return None if value is None or value is False else int(value)


def _set_version(task: Task, version: int | None) -> None:
    object.__setattr__(task, "store_version", version)


def run_key(task_id: str, scheduled_us: int) -> str:
    """The key of the run record of ``task_id`` at ``scheduled_us`` (see the module docstring)."""
    return f"{len(task_id.encode())}:{task_id}{_SEP}{scheduled_us:017d}"


def _task_prefix(task_id: str) -> bytes:
    return f"{len(task_id.encode())}:{task_id}".encode()


def parse_run_key(key: bytes | str) -> tuple[str, int]:
    """``(task id, scheduled µs)`` of a run key."""
    raw = key.encode() if isinstance(key, str) else key
    colon = raw.index(b":")
    size = int(raw[:colon])
    start = colon + 1
    return raw[start : start + size].decode(), int(raw[start + size + 1 :])


def _time(us: Any) -> datetime | None:
    return None if us is None or us == "" else from_timestamp_us(int(us))


def parse_run(key: bytes | str, record: bytes | str) -> RunRecord:
    """The :class:`RunRecord` stored as ``record`` under ``key``."""
    task_id, scheduled_us = parse_run_key(key)
    text = record.decode() if isinstance(record, bytes) else record
    status, attempt, fired, on_crash, rest = text.split(_SEP, 4)
    instance, _, details = rest.rpartition(_SEP)
    extra = json.loads(details) if details else {}
    duration = extra.get("d")
    return RunRecord(
        task_id=task_id,
        scheduled_at=datetime_from_us(scheduled_us, timezone.utc),
        status=status,  # type: ignore[arg-type]
        instance=instance,
        fired_at=_time(fired),
        run_id=extra.get("r"),
        started_at=_time(extra.get("b")),
        finished_at=_time(extra.get("e")),
        duration=None if duration is None else float(duration),
        error=extra.get("x"),
        attempt=int(attempt),
        on_crash=on_crash,
    )


def _details(outcome: RunOutcome) -> str:
    """The JSON part of a finished run record (built by hand: this runs once per run)."""
    parts: list[str] = []
    if outcome.run_id is not None:
        parts.append('"r":' + _json_string(str(outcome.run_id)))
    if outcome.started_at is not None:
        parts.append(f'"b":{utc_timestamp_us(outcome.started_at)}')
    if outcome.finished_at is not None:
        parts.append(f'"e":{utc_timestamp_us(outcome.finished_at)}')
    if outcome.duration is not None and math.isfinite(outcome.duration):
        parts.append(f'"d":{float(outcome.duration)!r}')
    error = summarize_error(outcome.error)
    if error is not None:
        parts.append('"x":' + _json_string(error))
    return "{" + ",".join(parts) + "}" if parts else ""


class RedisStore(PersistentStore):
    """Keeps tasks in Redis.

    :param database: the database number (Asyncz's first argument), or a ``redis://`` URL
    :param url: a ``redis://`` URL; alternatively pass connection options (``host``, ``port``,
        ``password``, ...) as keyword arguments, as in Asyncz, or a ready ``client``
    :param key_prefix: prefix of the store's keys
    :param tasks_key: override that key name (Asyncz's option)
    :param run_times_key: override that key name (Asyncz's option)
    :param notify: announce schedule changes on ``<prefix>changes`` and listen there, so
        schedulers sharing the store wake up at once (the poll stays as a safety net)
    :param run_retention: seconds finished run records are kept (by their scheduled time;
        purged during heartbeats, at most every few minutes); ``None`` keeps them all
    :param pickle_protocol: the pickle protocol, for the ``pickle`` serializer
    :param serializer: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    :param signing_key: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    :param encryption_key: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    :param accept_unprotected: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    :param poll_interval: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    :param cache_size: see :class:`~asyncz.plugins.stores.persistent.PersistentStore`
    """

    def __init__(
        self,
        database: int | str = 0,
        tasks_key: str | None = None,
        run_times_key: str | None = None,
        pickle_protocol: int | None = None,
        *,
        url: str | None = None,
        key_prefix: str = "asyncz.",
        client: redis.Redis | None = None,
        serializer: Any = "pickle",
        signing_key: Any = None,
        encryption_key: Any = None,
        accept_unprotected: bool = False,
        poll_interval: float | None = 5.0,
        cache_size: int = 100_000,
        notify: bool = True,
        run_retention: float | None = 7 * _DAY,
        **connect_args: Any,
    ) -> None:
        super().__init__(
            serializer=serializer,
            signing_key=signing_key,
            encryption_key=encryption_key,
            accept_unprotected=accept_unprotected,
            poll_interval=poll_interval,
            cache_size=cache_size,
            pickle_protocol=pickle_protocol,
        )
        # Imported here, not at module level: discovering plugins must not need redis.
        try:
            import redis
        except ImportError as exc:
            raise ImportError(missing_dependency("the redis store", exc), name=exc.name) from exc

        if run_retention is not None and not (
            isinstance(run_retention, (int, float))
            and not isinstance(run_retention, bool)
            and run_retention > 0
        ):
            raise ValueError(
                f"run_retention must be a number of seconds > 0 or None, got {run_retention!r}"
            )
        self.run_retention = None if run_retention is None else float(run_retention)
        self.client: redis.Redis
        if isinstance(database, str):  # RedisStore("redis://...") reads naturally too
            url, database = url or database, 0
        if client is not None:
            self.client = client
        elif url is not None:
            self.client = redis.Redis.from_url(url, **connect_args)
        else:
            self.client = redis.Redis(db=database, **connect_args)
        names = {name: f"{key_prefix}{name}" for name in scripts.KEY_NAMES}
        names["tasks"] = tasks_key or names["tasks"]
        names["run_times"] = run_times_key or names["run_times"]
        self.tasks_key = names["tasks"]
        self.run_times_key = names["run_times"]
        self.leases_key = names["leases"]
        self.lease_info_key = names["lease_info"]
        self.versions_key = names["versions"]
        self.instances_key = names["instances"]
        self.heartbeats_key = names["heartbeats"]
        self.runs_key = names["runs"]
        self.runs_by_time_key = names["runs_by_time"]
        self.runs_by_task_key = names["runs_by_task"]
        #: pub/sub channel where schedule changes are announced to other schedulers
        self.channel = f"{key_prefix}changes"
        self.notify = notify
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        #: every script's KEYS, in the order of redis_scripts.KEY_NAMES
        self._keys = [names[name] for name in scripts.KEY_NAMES]
        #: the keys of tasks (what remove_all_tasks clears)
        self._task_keys = self._keys[:5]
        register = self.client.register_script
        self._add = register(scripts.ADD)
        self._update = register(scripts.UPDATE)
        self._delete = register(scripts.DELETE)
        self._acquire = register(scripts.ACQUIRE)
        self._release = register(scripts.RELEASE)
        self._due = register(scripts.DUE)
        self._renew = register(scripts.RENEW)
        self._register = register(scripts.REGISTER)
        self._unregister = register(scripts.UNREGISTER)
        self._heartbeat = register(scripts.HEARTBEAT)
        self._fire = register(scripts.FIRE)
        self._finish = register(scripts.FINISH)
        self._take_reruns = register(scripts.TAKE_RERUNS)
        # (owner, task id) -> lease token, for the tasks this instance acquired and has not
        # released: a release, fire or renewal names the token, and is refused when the lease
        # was taken over, cleared by a change of schedule, or the task deleted meanwhile.
        self._tokens: dict[tuple[str, str], str] = {}
        self._tokens_lock = threading.Lock()

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self._backfill_versions()
        if self.notify and self._listener is None:
            # A fresh event per listener: one still winding down from an earlier shutdown
            # must not be revived.
            self._stop = threading.Event()
            self._listener = threading.Thread(
                target=self._listen, args=(self._stop,), name=f"asyncz-redis-{alias}", daemon=True
            )
            self._listener.start()

    def _listen(self, stop: threading.Event) -> None:
        """Wake the scheduler when another process announces a change (pub/sub)."""
        pubsub = None
        while not stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                    pubsub.subscribe(self.channel)
                message = pubsub.get_message(timeout=0.5)
                if message is not None and message.get("type") == "message":
                    self.notified(message["data"])
            except Exception:
                # The server went away: the poll covers the gap; subscribe again shortly.
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()
                pubsub = None
                stop.wait(1.0)
        if pubsub is not None:
            with contextlib.suppress(Exception):
                pubsub.close()

    def _announce(self, tasks: Sequence[Task]) -> None:
        message = self.notification(tasks) if self.notify else None
        if message is not None:
            try:
                self.client.publish(self.channel, message)
            except Exception:  # best effort: the others' poll still finds the change
                self.logger.debug("Could not announce a change on %r", self.channel, exc_info=True)

    def shutdown(self) -> None:
        if self._listener is not None:
            # Not joined: it notices within half a second and closes its own connection.
            self._stop.set()
            self._listener = None
        # The connection pool reconnects on the next use, so a restart needs nothing here.
        self.client.connection_pool.disconnect()

    def _backfill_versions(self) -> None:
        """Give a version to tasks stored without one (by an asyncz before versions)."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hlen(self.tasks_key)
            pipe.hlen(self.versions_key)
            tasks, versions = pipe.execute()
        if tasks == versions:
            return
        missing = set(self.client.hkeys(self.tasks_key)) - set(self.client.hkeys(self.versions_key))
        if missing:
            with self.client.pipeline(transaction=False) as pipe:
                for task_id in missing:
                    pipe.hsetnx(self.versions_key, task_id, new_store_version())
                pipe.execute()

    # -- the Store protocol ----------------------------------------------------------------

    def add_task(self, task: Task) -> None:
        self.add_tasks([task])

    def add_tasks(self, tasks: Sequence[Task]) -> None:
        """Add tasks in one script: all are added, or (on a conflict) none."""
        ids = [task.id for task in tasks]
        if len(set(ids)) != len(ids):
            raise ConflictIdError(next(i for i in ids if ids.count(i) > 1))
        if not tasks:
            return
        args: list[Any] = [len(tasks)]
        encoded = [self.encode(task) for task in tasks]
        versions = [new_store_version() for _ in tasks]
        for task, enc, version in zip(tasks, encoded, versions, strict=True):
            args += [task.id, enc[0], _score(task.next_run_time), version]
        taken = self._add(keys=self._keys, args=args)
        if taken:
            raise ConflictIdError(_member(taken))
        for task, enc, version in zip(tasks, encoded, versions, strict=True):
            self.stored(task, enc)
            _set_version(task, version)
        self._announce(tasks)

    def update_task(self, task: Task, *, keep_schedule: bool = False) -> None:
        """Store the changed ``task``.

        Conditional when ``task.store_version`` is set: :class:`TaskConflictError` when the
        stored version differs (another writer came first). With ``keep_schedule`` the stored
        run time and any lease stay as they are (and ``task.next_run_time`` is set to the stored
        run time); otherwise the task's ``next_run_time`` is stored and any lease ends.
        """
        encoded = self.encode(task)
        expected = task.store_version
        args: list[Any] = [
            task.id,
            encoded[0],
            _score(task.next_run_time),
            "" if expected is None else expected,
            "1" if keep_schedule else "0",
            new_store_version(),
        ]
        result = self._update(keys=self._keys, args=args)
        status = int(result[0])
        if status == 0:
            raise TaskLookupError(task.id, self.alias)
        if status < 0:
            raise TaskConflictError(task.id, self.alias, expected, _version(result[1]))
        if keep_schedule:
            run = result[2]
            zone = getattr(task.trigger, "timezone", None)
            next_time = from_timestamp_us(
                None if run is None or run is False else _int(run),
                zone if isinstance(zone, tzinfo) else timezone.utc,
            )
            object.__setattr__(task, "next_run_time", next_time)
        self.stored(task, encoded)
        _set_version(task, int(result[1]))
        if not keep_schedule:
            self._announce([task])

    def delete_task(self, task_id: str) -> None:
        self.forget([task_id])
        if not self._delete(keys=self._keys, args=[task_id]):
            raise TaskLookupError(task_id, self.alias)

    def remove_all_tasks(self) -> None:
        self.forget()
        with self._tokens_lock:
            self._tokens.clear()
        self.client.delete(*self._task_keys)

    def lookup_task(self, task_id: str) -> Task | None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hget(self.tasks_key, task_id)
            pipe.zscore(self.run_times_key, task_id)
            pipe.hget(self.lease_info_key, task_id)
            pipe.hget(self.versions_key, task_id)
            data, score, info, version = pipe.execute()
        if data is None:
            return None
        tasks = self.restore_all([(task_id, data, self._run_time(score, info))])
        if not tasks:
            return None
        _set_version(tasks[0], _version(version))
        return tasks[0]

    @staticmethod
    def _run_time(score: Any, info: Any) -> int | None:
        if score is not None:
            return _int(score)
        if info is not None:  # leased: the run time it had when it was handed out
            return _int(info.split(b"|", 1)[0])
        return None

    def _all_records(self) -> tuple[list[tuple[str, bytes, int | bool | None]], dict[str, Any]]:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.tasks_key)
            pipe.zrange(self.run_times_key, 0, -1, withscores=True)
            pipe.hgetall(self.lease_info_key)
            pipe.hgetall(self.versions_key)
            records, scores, infos, versions = pipe.execute()
        times = {member: _int(score) for member, score in scores}
        for member, info in infos.items():
            times.setdefault(member, _int(info.split(b"|", 1)[0]))
        rows = [(raw_id.decode(), records[raw_id], times.get(raw_id)) for raw_id in sorted(records)]
        return rows, {_member(k): v for k, v in versions.items()}

    def iter_records(self) -> Iterator[tuple[str, bytes, int | bool | None]]:
        yield from self._all_records()[0]

    def get_all_tasks(self) -> list[Task]:
        rows, versions = self._all_records()
        tasks = self.restore_all(rows)
        for task in tasks:
            _set_version(task, _version(versions.get(task.id)))
        return sorted(tasks, key=order_key)

    def get_due_tasks(self, now: datetime) -> list[Task]:
        # Only the due tasks, through the run-time index (not every record), in one round trip.
        due, records, versions, leased = self._due(keys=self._keys, args=[utc_timestamp_us(now)])
        rows = [
            (task_id.decode(), data, _int(score))
            for task_id, score, data in zip(due[::2], due[1::2], records, strict=True)
            if data is not None  # deleted while the script ran
        ]
        version_of = {
            _member(task_id): version for task_id, version in zip(due[::2], versions, strict=True)
        }
        if leased:
            for i in range(0, len(leased), 4):
                rows.append((leased[i].decode(), leased[i + 2], _int(leased[i + 1])))
                version_of[_member(leased[i])] = leased[i + 3]
            rows.sort(key=lambda row: (row[2], row[0]))
        tasks = self.restore_all(rows)
        for task in tasks:
            _set_version(task, _version(version_of.get(task.id)))
        return tasks

    def get_next_run_time(self) -> datetime | None:
        if self._quarantined:
            return self._next_run_time_without(self._quarantined_ids())
        with self.client.pipeline(transaction=True) as pipe:
            pipe.zrange(self.run_times_key, 0, 0, withscores=True)
            pipe.zrange(self.leases_key, 0, 0, withscores=True)
            first, lease = pipe.execute()
        candidates = [_int(score) for _, score in first + lease]
        return from_timestamp_us(min(candidates)) if candidates else None

    def _next_run_time_without(self, quarantined: frozenset[str]) -> datetime | None:
        """:meth:`get_next_run_time` not counting the quarantined tasks (run time or lease):
        reads a few more entries of each sorted set and skips theirs (one round trip unless
        more than a page of the earliest entries are quarantined)."""
        first = min(len(quarantined), _SKIP_PAGE) + 1
        keys = (self.run_times_key, self.leases_key)
        with self.client.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.zrange(key, 0, first - 1, withscores=True)
            pages = pipe.execute()
        candidates: list[int] = []
        for key, entries in zip(keys, pages, strict=True):
            start, size = 0, first
            while True:
                found = next((s for m, s in entries if _member(m) not in quarantined), None)
                if found is not None:
                    candidates.append(_int(found))
                    break
                if len(entries) < size:
                    break  # the end of the set: every entry in it is quarantined
                # A whole page of quarantined entries: read on (this key only). At most
                # len(quarantined) entries are skipped in all, so this ends.
                start += size
                size = min(len(quarantined), 1000) + 1
                entries = self.client.zrange(key, start, start + size - 1, withscores=True)
        return from_timestamp_us(min(candidates)) if candidates else None

    # -- leases ------------------------------------------------------------------------------

    def acquire_due_tasks(self, now: datetime, owner: str, limit: int, lease: float) -> list[Task]:
        now_us = utc_timestamp_us(now)
        until = now_us + int(lease * 1_000_000)
        token = uuid.uuid4().hex
        acquired: list[Task] = []
        reports: list[tuple[str, str]] = []
        reader = self.reader()
        while len(acquired) < limit:
            wanted = limit - len(acquired)
            flat = self._acquire(keys=self._keys, args=[now_us, owner, wanted, until, token])
            for i in range(0, len(flat), 4):
                # One that does not restore stays leased (its token is not remembered, so it
                # is not renewed either): retried when the lease runs out.
                task = self.restore(
                    flat[i].decode(), flat[i + 2], _int(flat[i + 1]), reports, reader
                )
                if task is not None:
                    _set_version(task, _version(flat[i + 3]))
                    acquired.append(task)
            if len(flat) // 4 < wanted:
                break
        if acquired:
            with self._tokens_lock:
                for task in acquired:
                    self._tokens[owner, task.id] = token
        self.report(reports)
        return acquired

    def _take_tokens(self, owner: str, task_ids: Iterator[str] | Sequence[str]) -> list[str]:
        """The remembered tokens of ``task_ids`` ("" for none), forgotten."""
        with self._tokens_lock:
            pop = self._tokens.pop
            return [pop((owner, task_id), "") for task_id in task_ids]

    def release_tasks(self, owner: str, next_run_times: Mapping[str, datetime | None]) -> list[str]:
        if not next_run_times:
            return []
        self.forget(i for i, n in next_run_times.items() if n is None)
        tokens = self._take_tokens(owner, list(next_run_times))
        args: list[Any] = [owner, len(next_run_times)]
        for (task_id, next_time), token in zip(next_run_times.items(), tokens, strict=True):
            args += [task_id, token, _score(next_time)]
        released = self._release(keys=self._keys, args=args) or []
        return [_member(i) for i in released]

    def renew_leases(self, owner: str, lease: float) -> int:
        """Extend to (store now + ``lease``) the leases this instance still holds for
        ``owner``; returns how many. Safe from any thread."""
        with self._tokens_lock:
            held = [
                (task_id, token) for (who, task_id), token in self._tokens.items() if who == owner
            ]
        if not held:
            return 0
        args: list[Any] = [owner, int(lease * 1_000_000), len(held)]
        for task_id, token in held:
            args += [task_id, token]
        renewed = {_member(i) for i in self._renew(keys=self._keys, args=args) or []}
        if len(renewed) < len(held):
            with self._tokens_lock:  # lost meanwhile: no release can succeed, forget them
                for task_id, token in held:
                    if task_id not in renewed and self._tokens.get((owner, task_id)) == token:
                        del self._tokens[owner, task_id]
        return len(renewed)

    # -- instances ---------------------------------------------------------------------------

    def register_instance(self, identity: str, info: Mapping[str, Any]) -> None:
        """Register (or re-register) a scheduler, with its heartbeat at the store's now."""
        self._register(keys=self._keys, args=[identity, _info_json(info)])

    def heartbeat(self, identity: str, info: Mapping[str, Any], dead_after: float) -> list[str]:
        """Record ``identity``'s heartbeat and declare dead the instances silent for more than
        ``dead_after`` seconds (store clock): their leases end at once, their started runs are
        abandoned or wait for a rerun (``on_crash``). Finished run records older than
        ``run_retention`` are purged at most every few minutes. Returns the identities this
        call declared dead."""
        retention = "" if self.run_retention is None else int(self.run_retention * 1_000_000)
        args: list[Any] = [
            identity,
            _info_json(info),
            int(dead_after * 1_000_000),
            retention,
            int(_PURGE_EVERY * 1_000_000),
            _PURGE_BATCH,
        ]
        return [_member(i) for i in self._heartbeat(keys=self._keys, args=args) or []]

    def unregister_instance(self, identity: str) -> None:
        """Remove a scheduler (clean shutdown) and end its leases."""
        self._unregister(keys=self._keys, args=[identity])

    def get_instances(self) -> list[tuple[str, dict[str, Any], float]]:
        """``(identity, info, heartbeat age in seconds by the store clock)``, by identity."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.time()
            pipe.hgetall(self.instances_key)
            pipe.zrange(self.heartbeats_key, 0, -1, withscores=True)
            (seconds, micros), infos, beats = pipe.execute()
        now = int(seconds) * 1_000_000 + int(micros)
        last = {_member(m): _int(s) for m, s in beats}
        out = []
        for raw, data in infos.items():
            identity = _member(raw)
            beat = last.get(identity)
            age = float("inf") if beat is None else max(0.0, (now - beat) / 1_000_000)
            out.append((identity, json.loads(data), age))
        return sorted(out, key=lambda item: item[0])

    # -- run records -------------------------------------------------------------------------

    def fire_tasks(self, owner: str, fires: Sequence[Fire]) -> dict[str, FireResult]:
        """Release the leased tasks of ``fires`` (as :meth:`release_tasks`) and record their
        run times, all in one script: a run time that already has a record is a duplicate, one
        over the task's ``max_instances`` (``started`` runs on every scheduler) is recorded as
        skipped. Fires whose lease was lost are left out of the answer."""
        if not fires:
            return {}
        self.forget(f.task_id for f in fires if f.next_run_time is None)
        tokens = self._take_tokens(owner, [f.task_id for f in fires])
        args: list[Any] = [owner, len(fires)]
        times: dict[str, list[datetime]] = {}
        for fire, token in zip(fires, tokens, strict=True):
            run_times = list(fire.run_times)
            times[fire.task_id] = run_times
            if fire.on_crash not in ON_CRASH_POLICIES:
                raise ValueError(
                    f"on_crash of task {fire.task_id!r} must be one of {ON_CRASH_POLICIES}, "
                    f"got {fire.on_crash!r}"
                )
            spec = f"{int(fire.max_instances)},{fire.on_crash}"
            if run_times:
                spec += "," + ",".join(f"{utc_timestamp_us(t):017d}" for t in run_times)
            args += [fire.task_id, token, _score(fire.next_run_time), spec]
        reply = _member(self._fire(keys=self._keys, args=args))
        results: dict[str, FireResult] = {}
        for fire, codes in zip(fires, reply.split(","), strict=True):
            if codes == "-":  # the lease was lost
                continue
            task_id = fire.task_id
            run_times = times[task_id]
            if codes == "s" * len(run_times):  # the common case
                results[task_id] = FireResult(task_id=task_id, started=run_times)
                continue
            started: list[datetime] = []
            skipped: list[datetime] = []
            duplicates: list[datetime] = []
            lists = {"s": started, "k": skipped, "d": duplicates}
            for code, run_time in zip(codes, run_times, strict=True):
                lists[code].append(run_time)
            results[task_id] = FireResult(
                task_id=task_id, started=started, skipped=skipped, duplicates=duplicates
            )
        return results

    def finish_runs(self, outcomes: Sequence[RunOutcome]) -> None:
        """Record how runs ended (one script for the batch); a record changes only while it is
        ``started`` by the outcome's instance."""
        args: list[Any] = [0]
        for outcome in outcomes:
            if outcome.status == "started":
                continue
            key = run_key(outcome.task_id, utc_timestamp_us(outcome.scheduled_at))
            args += [key, outcome.instance, outcome.status, _details(outcome)]
        args[0] = (len(args) - 1) // 4
        if args[0]:
            self._finish(keys=self._keys, args=args)

    def get_runs(self, task_id: str | None = None, limit: int = 50) -> list[RunRecord]:
        """The run records of ``task_id`` (every task's with ``None``), newest scheduled time
        first (ties by task id), at most ``limit``."""
        if limit <= 0:
            return []
        keys: list[Any]
        if task_id is not None:
            prefix = _task_prefix(task_id)
            keys = list(
                self.client.zrevrangebylex(
                    self.runs_by_task_key,
                    b"(" + prefix + b"\x20",
                    b"(" + prefix + b"\x1f",
                    0,
                    limit,
                )
            )
        else:
            entries: list[Any] = list(
                self.client.zrevrange(self.runs_by_time_key, 0, limit - 1, withscores=True)
            )
            if len(entries) == limit:  # ties at the last time may be cut anywhere: read them all
                last = entries[-1][1]
                ties = self.client.zrangebyscore(self.runs_by_time_key, last, last)
                entries = [e for e in entries if e[1] != last] + [(m, last) for m in ties]
            found = [(-_int(score), parse_run_key(member)[0], member) for member, score in entries]
            keys = [member for *_, member in sorted(found)[:limit]]
        if not keys:
            return []
        records = self.client.hmget(self.runs_key, keys)
        return [parse_run(k, r) for k, r in zip(keys, records, strict=True) if r is not None]

    def take_reruns(self, owner: str, limit: int) -> list[tuple[Task, datetime]]:
        """Take up to ``limit`` runs of dead schedulers waiting for a rerun (each is handed out
        once): they become attempt 2, started by ``owner``. A run whose task is gone is
        abandoned; one whose task cannot be restored is abandoned too, with the reason."""
        if limit <= 0:
            return []
        flat = self._take_reruns(keys=self._keys, args=[owner, limit]) or []
        taken: list[tuple[Task, datetime]] = []
        reports: list[tuple[str, str]] = []
        lost: list[RunOutcome] = []
        reader = self.reader()
        for i in range(0, len(flat), 4):
            task_id, scheduled_us = parse_run_key(flat[i])
            run = flat[i + 3]
            when = datetime_from_us(scheduled_us, timezone.utc)
            task = self.restore(
                task_id, flat[i + 1], None if run is None else _int(run), reports, reader
            )
            if task is None:
                lost.append(
                    RunOutcome(
                        task_id=task_id,
                        scheduled_at=when,
                        instance=owner,
                        status="abandoned",
                        error=f"the task cannot be restored: {reports[-1][1]}",
                    )
                )
                continue
            _set_version(task, _version(flat[i + 2]))
            taken.append((task, when))
        if lost:
            self.finish_runs(lost)
        self.report(reports)
        return taken

    def __repr__(self) -> str:
        # Asyncz's repr; the keys are shown only when they are not the default ones.
        if (self.tasks_key, self.run_times_key) == ("asyncz.tasks", "asyncz.run_times"):
            return "<RedisStore>"
        return f"<RedisStore (tasks_key={self.tasks_key!r}, run_times_key={self.run_times_key!r})>"


def _score(value: datetime | None) -> str:
    # Microseconds since the epoch stay below 2**53, so a Redis score (a double) holds them
    # exactly; passed as text so no float rounding happens on the way.
    return "" if value is None else str(utc_timestamp_us(value))


def _info_json(info: Mapping[str, Any]) -> str:
    return json.dumps(dict(info), separators=(",", ":"), default=str)


@hookimpl
def asyncz_register_stores(register: Any) -> None:
    register("redis", RedisStore)
