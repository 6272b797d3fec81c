"""The ``redis`` store: records in a hash, run times in a sorted set, every change one Lua script.

Keys (``key_prefix`` defaults to ``"asyncz."``, so the first two are Asyncz's own key names):

* ``<prefix>tasks`` — HASH id -> encoded record
* ``<prefix>run_times`` — ZSET id -> next run time in microseconds since the epoch, for tasks
  that are scheduled and not leased (paused tasks are absent). Equal scores are ordered by
  member, which gives "ties by id" for free.
* ``<prefix>leases`` — ZSET id -> lease expiry (µs) of tasks handed to a scheduler
* ``<prefix>lease_info`` — HASH id -> ``"<run time µs>|<owner>"`` of those tasks

Every change that touches more than one key runs as one Lua script, so it is atomic on the server:
no check-then-write race between schedulers sharing the keys, and no half-applied change if a
client dies. Under Redis Cluster, give a prefix with a hash tag (``"{asyncz}."``) so all four
keys live in one slot.

Added and updated tasks are announced on the pub/sub channel ``<prefix>changes``; every store
instance listens there (one thread) and wakes its scheduler when another instance announces a
change, so a task added by one process runs on time in another without waiting for a poll.

The ``redis`` package is imported when a store is created, not when this module is imported, so
plugin discovery works without it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from asyncz.core.converters import utc_timestamp_us
from asyncz.core.errors import ConflictIdError, TaskLookupError
from asyncz.core.hookspecs import hookimpl
from asyncz.core.records import from_timestamp_us
from asyncz.core.task import Task
from asyncz.plugins.stores.persistent import PersistentStore, order_key

if TYPE_CHECKING:
    import redis

__all__ = ["RedisStore"]

# KEYS: tasks, run_times. ARGV: n, then n x (id, record, run time or "").
_ADD = """
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  if redis.call('HEXISTS', KEYS[1], ARGV[2 + i * 3]) == 1 then return ARGV[2 + i * 3] end
end
for i = 0, n - 1 do
  local id, nxt = ARGV[2 + i * 3], ARGV[4 + i * 3]
  redis.call('HSET', KEYS[1], id, ARGV[3 + i * 3])
  if nxt ~= '' then redis.call('ZADD', KEYS[2], nxt, id) end
end
return false
"""

# KEYS: tasks, run_times, leases, lease_info. ARGV: id, record, run time or "".
_UPDATE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
return 1
"""

# KEYS: tasks, run_times, leases, lease_info. ARGV: id.
_DELETE = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
"""

# KEYS: tasks, run_times, leases, lease_info. ARGV: now, owner, limit, lease expiry.
# Returns a flat list of (id, run time, record) for the tasks now leased to owner.
_ACQUIRE = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  local info = redis.call('HGET', KEYS[4], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  if info then
    local sep = string.find(info, '|', 1, true)
    redis.call('ZADD', KEYS[2], string.sub(info, 1, sep - 1), id)
  end
end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0,
                       tonumber(ARGV[3]))
local out = {}
for i = 1, #due, 2 do
  local id, score = due[i], due[i + 1]
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[3], ARGV[4], id)
  redis.call('HSET', KEYS[4], id, score .. '|' .. ARGV[2])
  table.insert(out, id)
  table.insert(out, score)
  table.insert(out, redis.call('HGET', KEYS[1], id) or '')
end
return out
"""

# KEYS: tasks, run_times, leases, lease_info. ARGV: now. Read-only, one round trip.
# Returns {due, records, leased}: the flat (id, run time) list of the scheduled tasks due at now,
# in run-time order (ties by id); their records in the same order (false for one that vanished);
# and a flat (id, run time, record) list of the leased ones due (their run time is in
# lease_info). The records are read with HMGET in slices, which is several times faster than one
# HGET per task (unpack() is bounded by Lua's stack, hence the slices).
_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES')
local ids, records = {}, {}
for i = 1, #due, 2 do ids[#ids + 1] = due[i] end
for first = 1, #ids, 1000 do
  local got = redis.call('HMGET', KEYS[1], unpack(ids, first, math.min(first + 999, #ids)))
  for j = 1, #got do records[#records + 1] = got[j] end
end
local leased = {}
local infos = redis.call('HGETALL', KEYS[4])
for i = 1, #infos, 2 do
  local id, info = infos[i], infos[i + 1]
  local sep = string.find(info, '|', 1, true)
  local at = string.sub(info, 1, sep - 1)
  if tonumber(at) <= tonumber(ARGV[1]) and not redis.call('ZSCORE', KEYS[2], id) then
    local data = redis.call('HGET', KEYS[1], id)
    if data then
      table.insert(leased, id)
      table.insert(leased, at)
      table.insert(leased, data)
    end
  end
end
return {due, records, leased}
"""

# KEYS: tasks, run_times, leases, lease_info. ARGV: owner, n, then n x (id, run time or "").
_RELEASE = """
local n = tonumber(ARGV[2])
local released = {}
for i = 0, n - 1 do
  local id, nxt = ARGV[3 + i * 2], ARGV[4 + i * 2]
  local info = redis.call('HGET', KEYS[4], id)
  if info then
    local sep = string.find(info, '|', 1, true)
    if string.sub(info, sep + 1) == ARGV[1] then
      redis.call('HDEL', KEYS[4], id)
      redis.call('ZREM', KEYS[3], id)
      if nxt == '' then
        redis.call('HDEL', KEYS[1], id)
      else
        redis.call('ZADD', KEYS[2], nxt, id)
      end
      table.insert(released, id)
    end
  end
end
return released
"""


#: How many quarantined entries of each sorted set the next-run-time lookup reads past at first.
_SKIP_PAGE = 15


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


class RedisStore(PersistentStore):
    """Keeps tasks in Redis.

    :param database: the database number (Asyncz's first argument), or a ``redis://`` URL
    :param url: a ``redis://`` URL; alternatively pass connection options (``host``, ``port``,
        ``password``, ...) as keyword arguments, as in Asyncz, or a ready ``client``
    :param key_prefix: prefix of the store's keys
    :param tasks_key, run_times_key: override those two key names (Asyncz's options)
    :param notify: announce added and updated tasks on ``<prefix>changes`` and listen there,
        so schedulers sharing the store wake up at once (the poll stays as a safety net)
    :param pickle_protocol: the pickle protocol, for the ``pickle`` serializer
    :param serializer, signing_key, encryption_key, accept_unprotected, poll_interval,
        cache_size: see
        :class:`~asyncz.plugins.stores.persistent.PersistentStore`
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
        import redis

        self.client: redis.Redis
        if isinstance(database, str):  # RedisStore("redis://...") reads naturally too
            url, database = url or database, 0
        if client is not None:
            self.client = client
        elif url is not None:
            self.client = redis.Redis.from_url(url, **connect_args)
        else:
            self.client = redis.Redis(db=database, **connect_args)
        self.tasks_key = tasks_key or f"{key_prefix}tasks"
        self.run_times_key = run_times_key or f"{key_prefix}run_times"
        self.leases_key = f"{key_prefix}leases"
        self.lease_info_key = f"{key_prefix}lease_info"
        #: pub/sub channel where added and updated tasks are announced to other schedulers
        self.channel = f"{key_prefix}changes"
        self.notify = notify
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self._keys = [self.tasks_key, self.run_times_key, self.leases_key, self.lease_info_key]
        self._add = self.client.register_script(_ADD)
        self._update = self.client.register_script(_UPDATE)
        self._delete = self.client.register_script(_DELETE)
        self._acquire = self.client.register_script(_ACQUIRE)
        self._release = self.client.register_script(_RELEASE)
        self._due = self.client.register_script(_DUE)

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
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

    # -- the Store protocol ----------------------------------------------------------------

    def add_task(self, task: Task) -> None:
        self.add_tasks([task])

    def add_tasks(self, tasks: Sequence[Task]) -> None:
        """Add tasks in one script: all are added, or (on a conflict) none."""
        ids = [task.id for task in tasks]
        if len(set(ids)) != len(ids):
            raise ConflictIdError(next(i for i in ids if ids.count(i) > 1))
        args: list[Any] = [len(tasks)]
        encoded = [self.encode(task) for task in tasks]
        for task, enc in zip(tasks, encoded, strict=True):
            args += [task.id, enc[0], _score(task.next_run_time)]
        if not tasks:
            return
        taken = self._add(keys=self._keys[:2], args=args)
        if taken:
            raise ConflictIdError(taken.decode() if isinstance(taken, bytes) else str(taken))
        for task, enc in zip(tasks, encoded, strict=True):
            self.stored(task, enc)
        self._announce(tasks)

    def update_task(self, task: Task) -> None:
        encoded = self.encode(task)
        args: list[Any] = [task.id, encoded[0], _score(task.next_run_time)]
        if not self._update(keys=self._keys, args=args):
            raise TaskLookupError(task.id, self.alias)
        self.stored(task, encoded)
        self._announce([task])

    def delete_task(self, task_id: str) -> None:
        self.forget([task_id])
        if not self._delete(keys=self._keys, args=[task_id]):
            raise TaskLookupError(task_id, self.alias)

    def remove_all_tasks(self) -> None:
        self.forget()
        self.client.delete(*self._keys)

    def lookup_task(self, task_id: str) -> Task | None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hget(self.tasks_key, task_id)
            pipe.zscore(self.run_times_key, task_id)
            pipe.hget(self.lease_info_key, task_id)
            data, score, info = pipe.execute()
        if data is None:
            return None
        tasks = self.restore_all([(task_id, data, self._run_time(score, info))])
        return tasks[0] if tasks else None

    @staticmethod
    def _run_time(score: Any, info: Any) -> int | None:
        if score is not None:
            return _int(score)
        if info is not None:  # leased: the run time it had when it was handed out
            return _int(info.split(b"|", 1)[0])
        return None

    def iter_records(self) -> Iterator[tuple[str, bytes, int | bool | None]]:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.tasks_key)
            pipe.zrange(self.run_times_key, 0, -1, withscores=True)
            pipe.hgetall(self.lease_info_key)
            records, scores, infos = pipe.execute()
        times = {member: _int(score) for member, score in scores}
        for member, info in infos.items():
            times.setdefault(member, _int(info.split(b"|", 1)[0]))
        for raw_id in sorted(records):
            yield raw_id.decode(), records[raw_id], times.get(raw_id)

    def get_all_tasks(self) -> list[Task]:
        return sorted(self.restore_all(self.iter_records()), key=order_key)

    def get_due_tasks(self, now: datetime) -> list[Task]:
        # Only the due tasks, through the run-time index (not every record), in one round trip.
        due, records, leased = self._due(keys=self._keys, args=[utc_timestamp_us(now)])
        rows = [
            (task_id.decode(), data, _int(score))
            for task_id, score, data in zip(due[::2], due[1::2], records, strict=True)
            if data is not None  # deleted while the script ran
        ]
        if leased:
            rows += [
                (leased[i].decode(), leased[i + 2], _int(leased[i + 1]))
                for i in range(0, len(leased), 3)
            ]
            rows.sort(key=lambda row: (row[2], row[0]))
        return self.restore_all(rows)

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

    def acquire_due_tasks(self, now: datetime, owner: str, limit: int, lease: float) -> list[Task]:
        now_us = utc_timestamp_us(now)
        until = now_us + int(lease * 1_000_000)
        acquired: list[Task] = []
        reports: list[tuple[str, str]] = []
        reader = self.reader()
        while len(acquired) < limit:
            wanted = limit - len(acquired)
            flat = self._acquire(keys=self._keys, args=[now_us, owner, wanted, until])
            for i in range(0, len(flat), 3):
                # One that does not restore stays leased: retried when the lease runs out.
                task = self.restore(
                    flat[i].decode(), flat[i + 2], _int(flat[i + 1]), reports, reader
                )
                if task is not None:
                    acquired.append(task)
            if len(flat) // 3 < wanted:
                break
        self.report(reports)
        return acquired

    def release_tasks(self, owner: str, next_run_times: Mapping[str, datetime | None]) -> list[str]:
        if not next_run_times:
            return []
        self.forget(i for i, n in next_run_times.items() if n is None)
        args: list[Any] = [owner, len(next_run_times)]
        for task_id, next_time in next_run_times.items():
            args += [task_id, _score(next_time)]
        released = self._release(keys=self._keys, args=args) or []
        return [i.decode() if isinstance(i, bytes) else str(i) for i in released]

    def __repr__(self) -> str:
        # Asyncz's repr; the keys are shown only when they are not the default ones.
        if (self.tasks_key, self.run_times_key) == ("asyncz.tasks", "asyncz.run_times"):
            return "<RedisStore>"
        return f"<RedisStore (tasks_key={self.tasks_key!r}, run_times_key={self.run_times_key!r})>"


def _score(value: datetime | None) -> str:
    # Microseconds since the epoch stay below 2**53, so a Redis score (a double) holds them
    # exactly; passed as text so no float rounding happens on the way.
    return "" if value is None else str(utc_timestamp_us(value))


@hookimpl
def asyncz_register_stores(register: Any) -> None:
    register("redis", RedisStore)
