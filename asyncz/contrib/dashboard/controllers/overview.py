"""The read-only scheduler pages: overview, runtime, instances, timeline.

Here: :class:`OverviewPages`. Nothing here changes the scheduler: the timeline asks each task's
trigger for its next run times through ``preview_task_runs``, which advances nothing.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from lilya.requests import Request
from lilya.responses import Response

from asyncz.contrib.dashboard.charts import timeline_chart
from asyncz.contrib.dashboard.controllers.base import Pages, int_param

_RECENT = 8


def _component(kind: str, alias: str, instance: Any, task_count: int | None) -> dict[str, Any]:
    logger = getattr(instance, "logger", None)
    return {
        "kind": kind,
        "alias": alias,
        "class_name": type(instance).__name__ if instance is not None else "unknown",
        "module": type(instance).__module__ if instance is not None else "",
        "logger": getattr(logger, "name", None) or f"asyncz.{kind}s.{alias}",
        "task_count": task_count,
    }


def runtime_components(scheduler: Any) -> dict[str, list[dict[str, Any]]]:
    """The scheduler's stores and executors: alias, class, logger name and task count.

    A local scheduler is asked directly; a remote one may describe them itself
    (``runtime_components()``), else only the aliases are known."""
    describe = getattr(scheduler, "runtime_components", None)
    if callable(describe):
        return describe()  # type: ignore[no-any-return]
    info = scheduler.get_scheduler_info()
    infos = scheduler.get_task_infos()
    by_store: dict[str, int] = {}
    by_executor: dict[str, int] = {}
    for task in infos:
        by_store[task.store_alias or ""] = by_store.get(task.store_alias or "", 0) + 1
        by_executor[task.executor] = by_executor.get(task.executor, 0) + 1
    stores = []
    for alias in info.store_aliases:
        lookup = getattr(scheduler, "lookup_store", None)
        instance = lookup(alias) if lookup is not None else None
        stores.append(_component("store", alias, instance, by_store.get(alias, 0)))
    executors = []
    for alias in info.executor_aliases:
        lookup = getattr(scheduler, "lookup_executor", None)
        instance = lookup(alias) if lookup is not None else None
        executors.append(_component("executor", alias, instance, by_executor.get(alias, 0)))
    return {"stores": stores, "executors": executors}


class OverviewPages(Pages):
    def index(self, request: Request, form: Any = None) -> Response:
        info = self.scheduler.get_scheduler_info()
        tasks = list(self.scheduler.get_task_infos())
        recent = tasks[:_RECENT]
        runs = self.admin.recent_runs_for(None, _RECENT)
        return self.render(
            request,
            "index.html",
            section="overview",
            info=info,
            recent_tasks=recent,
            recent_runs=runs,
            chart=self.admin.outcome_chart(runs),
        )

    def runtime(self, request: Request, form: Any = None) -> Response:
        info = self.scheduler.get_scheduler_info()
        return self.render(
            request,
            "runtime.html",
            section="runtime",
            info=info,
            components=runtime_components(self.scheduler),
        )

    def instances(self, request: Request, form: Any = None) -> Response:
        instances = list(self.scheduler.get_scheduler_instance_infos())
        return self.render(
            request,
            "instances.html",
            section="instances",
            instances=instances,
            identity=self.scheduler.get_scheduler_info().identity,
        )

    def timeline(self, request: Request, form: Any = None) -> Response:
        per_task = int_param(request.query_params, "per_task", 3, 1, 50)
        limit = int_param(request.query_params, "limit", 50, 1, 500)
        now = datetime.now(timezone.utc)
        rows: list[dict[str, Any]] = []
        cutoff: datetime | None = None
        # In order of next run time: a task whose next run comes after the limit-th earliest
        # run found so far cannot add a row, nor can any task after it (no trigger's preview
        # starts before its next run time), so the previews stop there.
        for task in self.scheduler.get_task_infos(sort_by="next_run_time"):
            if task.next_run_time is None:
                continue
            if cutoff is not None and task.next_run_time > cutoff:
                break
            preview = self.scheduler.preview_task_runs(task.id, count=per_task, now=now)
            if preview is None:
                continue
            for index, moment in enumerate(preview.run_times, start=1):
                rows.append({"at": moment, "task": task, "ordinal": index})
            if len(rows) >= limit:
                rows.sort(key=lambda row: (row["at"], row["task"].id))
                del rows[limit:]
                cutoff = rows[-1]["at"]
        rows.sort(key=lambda row: (row["at"], row["task"].id))
        rows = rows[:limit]
        return self.render(
            request,
            "timeline.html",
            section="timeline",
            rows=rows,
            per_task=per_task,
            limit=limit,
            now=now,
            chart=timeline_chart(rows, now),
        )
