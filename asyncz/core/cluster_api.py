"""The cluster-wide part of the scheduler API: run records and the instances of every store.

Here: ``_ClusterAPIMixin`` with ``get_task_runs`` (the run records of the stores that keep them)
and ``get_scheduler_instance_infos`` (this scheduler, then the others registered in its stores).
The heartbeat and the recorder that write them: :mod:`asyncz.core.cluster`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from asyncz.core.converters import now as current_time
from asyncz.core.runs import RunRecord
from asyncz.core.scheduler_common import SchedulerInstanceInfo, SchedulerState, _SchedulerCore


class _ClusterAPIMixin(_SchedulerCore):
    """Run records and instances (part of :class:`BaseScheduler`)."""

    def get_task_runs(
        self, task_id: str | None = None, store: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        """The newest run records (of one task, or of all), newest fire time first.

        Stores that keep run records (every asyncz store but the memory one) record each fire
        time once, whichever scheduler sharing the store ran it; stores without them give
        nothing. ``store`` limits the search to one store.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        if task_id is not None and (not isinstance(task_id, str) or not task_id):
            raise TypeError(f"a task id must be a non-empty string, got {task_id!r}")
        with self._lock:
            stores = [self.lookup_store(store)] if store else list(self._stores.values())
        records: list[RunRecord] = []
        for candidate in stores:
            read = getattr(candidate, "get_runs", None)
            if read is not None:
                records.extend(read(task_id, limit))
        records.sort(key=lambda r: (r.scheduled_at, r.task_id), reverse=True)
        return records[:limit]

    def get_scheduler_instance_infos(self) -> tuple[SchedulerInstanceInfo, ...]:
        """This scheduler, then every other scheduler registered in its stores (by identity).

        The others are read from the stores' instance registries (every asyncz store but the
        memory one keeps one): their heartbeat age is by the store's clock, and a scheduler
        declared dead has left the registry. A store that cannot be read is skipped (logged).
        """
        info = self.get_scheduler_info()
        now = current_time()
        own = SchedulerInstanceInfo(
            identity=info.identity,
            scope="process-local",
            state=info.state,
            active=info.running,
            stale=not info.running,
            started_at=info.started_at,
            last_seen_at=now if info.running else None,
            uptime_seconds=info.uptime_seconds,
            heartbeat_age_seconds=0.0 if info.running else None,
            stale_after_seconds=self.heartbeat_stale_after,
            task_count=info.task_count,
            host=socket.gethostname(),
            pid=os.getpid(),
            asyncz_version=_asyncz_version(),
            stores=info.store_aliases,
            executors=info.executor_aliases,
        )
        found: dict[str, SchedulerInstanceInfo] = {}
        with self._lock:
            stores = list(self._stores.items())
        for alias, store in stores:
            read = getattr(store, "get_instances", None)
            if read is None or not self.running:
                continue
            try:
                registered = read()
            except Exception:
                self.logger.exception("Cannot read the instances registered in store %r", alias)
                continue
            for identity, data, age in registered:
                if identity == self.identity or identity in found:
                    continue
                found[identity] = _peer_info(identity, data, age, now, self.heartbeat_stale_after)
        return (own, *(found[identity] for identity in sorted(found)))


def _asyncz_version() -> str:
    from asyncz import __version__

    return __version__


def _peer_info(
    identity: str, data: Mapping[str, Any], age: float, now: datetime, stale_after: float
) -> SchedulerInstanceInfo:
    """Another scheduler as its registry entry describes it."""
    started: datetime | None = None
    text = data.get("started_at")
    if isinstance(text, str):
        try:
            started = datetime.fromisoformat(text)
        except ValueError:
            started = None
    last_seen = now - timedelta(seconds=max(age, 0.0))
    stale = age > stale_after
    pid = data.get("pid")
    return SchedulerInstanceInfo(
        identity=identity,
        scope="cluster",
        state=SchedulerState.RUNNING,
        active=not stale,
        stale=stale,
        started_at=started,
        last_seen_at=last_seen,
        uptime_seconds=(last_seen - started).total_seconds() if started else None,
        heartbeat_age_seconds=age,
        stale_after_seconds=stale_after,
        task_count=None,
        host=data.get("host") if isinstance(data.get("host"), str) else None,
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        asyncz_version=data.get("asyncz_version")
        if isinstance(data.get("asyncz_version"), str)
        else None,
        stores=tuple(str(s) for s in data.get("stores") or ()),
        executors=tuple(str(e) for e in data.get("executors") or ()),
    )
