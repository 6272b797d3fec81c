"""The review pages: events, audit trail, run history (and one run), logs.

Here: :class:`ReviewPages`. They read the admin's storages (memory ones by default; run history
from the store's run records when the scheduler keeps them) and change nothing.
"""

from __future__ import annotations

from typing import Any

from lilya.requests import Request
from lilya.responses import Response

from asyncz.contrib.dashboard.controllers.base import Pages, int_param, query_string
from asyncz.contrib.dashboard.events import EVENT_NAMES
from asyncz.contrib.dashboard.history import RUN_STATUSES

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _text(params: Any, name: str) -> str:
    return (params.get(name) or "").strip()


class ReviewPages(Pages):
    def events(self, request: Request, form: Any = None) -> Response:
        params = request.query_params
        name = _text(params, "name")
        if name not in EVENT_NAMES.values():
            name = ""
        task_id = _text(params, "task_id")
        q = _text(params, "q")
        limit = int_param(params, "limit", 100, 1, 1000)
        storage = self.admin.event_storage
        records = list(
            storage.query(name=name or None, task_id=task_id or None, q=q or None, limit=limit)
        )
        return self.render(
            request,
            "events.html",
            section="events",
            records=records,
            filters={"name": name, "task_id": task_id, "q": q, "limit": limit},
            names=sorted(EVENT_NAMES.values()),
        )

    def audit(self, request: Request, form: Any = None) -> Response:
        params = request.query_params
        action = _text(params, "action")
        task_id = _text(params, "task_id")
        q = _text(params, "q")
        limit = int_param(params, "limit", 100, 1, 1000)
        storage = self.admin.audit_storage
        try:
            records = list(
                storage.query(
                    action=action or None, task_id=task_id or None, q=q or None, limit=limit
                )
            )
        except ValueError:  # not an action name: nothing can match it
            records = []
        return self.render(
            request,
            "audit.html",
            section="audit",
            records=records,
            filters={"action": action, "task_id": task_id, "q": q, "limit": limit},
        )

    def _history_context(self, request: Request) -> dict[str, Any]:
        params = request.query_params
        task_id = _text(params, "task_id")
        status = _text(params, "status")
        if status not in RUN_STATUSES:
            status = ""
        q = _text(params, "q")
        limit = int_param(params, "limit", 100, 1, 1000)
        records = self.admin.query_runs(
            task_id=task_id or None, status=status or None, q=q or None, limit=limit
        )
        return {
            "records": records,
            "statuses": RUN_STATUSES,
            "keep": query_string([("task_id", task_id), ("status", status), ("q", q)]),
            "filters": {"task_id": task_id, "status": status, "q": q, "limit": limit},
            "chart": self.admin.outcome_chart(records),
        }

    def history(self, request: Request, form: Any = None) -> Response:
        return self.render(
            request, "history.html", section="history", **self._history_context(request)
        )

    def history_partial(self, request: Request, form: Any = None) -> Response:
        return self.render(request, "partials/history_table.html", **self._history_context(request))

    def run_detail(self, request: Request, form: Any = None) -> Response:
        run_id = request.path_params["run_id"]
        record = self.admin.get_run(run_id)
        if record is None:
            return self.not_found(request, f"Run not found: {run_id}")
        logs = self.admin.recent_logs(run_id=run_id, limit=500)
        return self.render(request, "run_detail.html", section="history", run=record, logs=logs)

    def _logs_context(self, request: Request) -> dict[str, Any]:
        params = request.query_params
        level = _text(params, "level").upper()
        filters = {
            "task_id": _text(params, "task_id"),
            "run_id": _text(params, "run_id"),
            "level": level if level in LOG_LEVELS else "",
            "q": _text(params, "q"),
            "limit": int_param(params, "limit", 200, 1, 2000),
        }
        entries = self.admin.recent_logs(
            task_id=filters["task_id"] or None,
            run_id=filters["run_id"] or None,
            level=filters["level"] or None,
            q=filters["q"] or None,
            limit=filters["limit"],
        )
        return {"entries": entries, "filters": filters, "levels": LOG_LEVELS}

    def logs(self, request: Request, form: Any = None) -> Response:
        return self.render(request, "logs.html", section="logs", **self._logs_context(request))

    def logs_partial(self, request: Request, form: Any = None) -> Response:
        return self.render(request, "partials/logs_table.html", **self._logs_context(request))
