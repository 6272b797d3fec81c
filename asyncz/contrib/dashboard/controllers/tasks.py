"""The task pages: the table (search, filters, sorting, pages), creation, row and bulk actions,
one task's page, and the edit form (preview, then apply).

Here: :class:`TaskPages`. A state change is a POST (the cross-site guard sits in front); an htmx
request gets the refreshed table back, a plain form post a 303 to the page to show next. The
callable of a new or edited task is named as text and imported only if the admin's
:class:`~asyncz.contrib.dashboard.callables.CallablePolicy` allows it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from lilya.requests import Request
from lilya.responses import HTMLResponse, RedirectResponse, Response

from asyncz.contrib.dashboard.controllers.base import (
    PER_PAGE_CHOICES,
    Pages,
    Pagination,
    int_param,
    is_htmx,
    query_string,
)
from asyncz.contrib.dashboard.forms import (
    EDIT_FIELDS,
    TRIGGER_TYPES,
    FormError,
    parse_create_form,
    parse_edit_form,
)
from asyncz.exceptions import AsynczException, TaskLookupError

ACTIONS = ("run", "pause", "resume", "remove")
STATES = ("scheduled", "paused", "pending")
SORT_KEYS = ("next_run_time", "name", "id", "trigger", "schedule_state", "executor", "store")
_ACTION_DONE = {"run": "Run started", "pause": "Paused", "resume": "Resumed", "remove": "Removed"}
_MAX_BULK = 1000
#: How long a "Run now" waits for the run's outcome before answering (seconds).
RUN_WAIT = 1.0


class TaskFilters:
    """The table's query: search text, filters, sorting and the page, read leniently (a stale
    bookmark shows the closest valid table, not an error)."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.q = (params.get("q") or "").strip()
        state = (params.get("state") or "").strip().lower()
        self.state = state if state in STATES else ""
        self.executor = (params.get("executor") or "").strip()
        self.trigger = (params.get("trigger") or "").strip()
        sort = (params.get("sort") or "").strip()
        self.descending = sort.startswith("-")
        self.sort = sort if sort.lstrip("-") in SORT_KEYS else ""
        self.page = int_param(params, "page", 1, 1, 1_000_000)
        per_page = int_param(params, "per_page", PER_PAGE_CHOICES[0], 1, PER_PAGE_CHOICES[-1])
        self.per_page = per_page

    def pairs(self, *, page: int | None = None) -> list[tuple[str, Any]]:
        pairs: list[tuple[str, Any]] = [
            ("q", self.q),
            ("state", self.state),
            ("executor", self.executor),
            ("trigger", self.trigger),
            ("sort", self.sort),
        ]
        if page is not None and page > 1:
            pairs.append(("page", page))
        pairs.append(("per_page", self.per_page))
        return pairs

    def query(self, *, page: int | None = None) -> str:
        """The filters as a query string (for links that keep them)."""
        return query_string(self.pairs(page=page))

    @property
    def active(self) -> bool:
        return bool(self.q or self.state or self.executor or self.trigger)


def _callable_text(info: Any) -> str:
    return str(info.callable_reference or info.callable_name or "")


class TaskPages(Pages):
    """Handlers for ``/tasks...`` and the overview's task listing."""

    # -- reading ---------------------------------------------------------------------------

    def select(self, filters: TaskFilters) -> list[Any]:
        sort_by = filters.sort.lstrip("-") or "next_run_time"
        return list(
            self.scheduler.get_task_infos(
                schedule_state=filters.state or None,
                executor=filters.executor or None,
                trigger=filters.trigger or None,
                q=filters.q or None,
                sort_by=sort_by,
                descending=filters.descending,
            )
        )

    def last_runs(self, infos: Sequence[Any]) -> dict[str, Any]:
        """The newest run record of each task shown, from the admin's run history."""
        return self.admin.latest_runs([info.id for info in infos])

    def table_context(self, request: Request, filters: TaskFilters) -> dict[str, Any]:
        infos = self.select(filters)
        page = Pagination(infos, filters.page, filters.per_page)
        info = self.scheduler.get_scheduler_info()
        return {
            "filters": filters,
            "pagination": page,
            "tasks": page.items,
            "last_runs": self.last_runs(page.items),
            "executors": info.executor_aliases,
            "stores": info.store_aliases,
            "states": STATES,
            "sort_keys": SORT_KEYS,
            "per_page_choices": PER_PAGE_CHOICES,
            "trigger_types": TRIGGER_TYPES,
            "scheduler_info": info,
        }

    def table(
        self, request: Request, filters: TaskFilters, *, status_code: int = 200, toast: str = ""
    ) -> HTMLResponse:
        headers = {}
        if toast:
            headers["hx-trigger"] = json.dumps({"asyncz:toast": {"message": toast}})
        return self.render(
            request,
            "partials/tasks_table.html",
            status_code=status_code,
            headers=headers,
            **self.table_context(request, filters),
        )

    def list_page(self, request: Request, form: Any = None) -> Response:
        filters = TaskFilters(request.query_params)
        return self.render(
            request, "tasks.html", section="tasks", **self.table_context(request, filters)
        )

    def table_partial(self, request: Request, form: Any = None) -> Response:
        return self.table(request, TaskFilters(request.query_params))

    def detail(self, request: Request, form: Any = None) -> Response:
        task_id = request.path_params["task_id"]
        info = self.scheduler.get_task_info(task_id)
        if info is None:
            return self.not_found(request, f"Task not found: {task_id}")
        preview = self.scheduler.preview_task_runs(task_id, count=self.admin.preview_count)
        records = self.admin.recent_runs_for(task_id, self.admin.recent_runs)
        logs = self.admin.recent_logs(task_id=task_id, limit=self.admin.recent_runs)
        return self.render(
            request,
            "task_detail.html",
            section="tasks",
            task=info,
            preview=preview,
            runs=records,
            logs=logs,
            chart=self.admin.outcome_chart(records),
        )

    # -- changing --------------------------------------------------------------------------

    def _filters_from_form(self, request: Request, form: Mapping[str, Any]) -> TaskFilters:
        """The filters of the table the action came from: the form's hidden ``filters`` field,
        else the query string of the page htmx reports (``HX-Current-URL``)."""
        raw = str(form.get("filters") or "")
        if not raw:
            current = request.headers.get("hx-current-url", "")
            raw = current.partition("?")[2]
        from urllib.parse import parse_qsl

        return TaskFilters(dict(parse_qsl(raw)))

    def audit(self, request: Request, action: str, task_id: str | None, **fields: Any) -> None:
        self.admin.record_audit(
            action, task_id=task_id, user=request.scope.get("asyncz_user"), **fields
        )

    def create(self, request: Request, form: Any = None) -> Response:
        filters = self._filters_from_form(request, form)
        try:
            new = parse_create_form(form)
            fn = self.admin.resolve_callable(new.callable_path)
            options: dict[str, Any] = {
                **new.trigger.options,
                "trigger": new.trigger.alias,
                "name": new.name,
                "args": new.args,
                "kwargs": new.kwargs,
            }
            if new.store:
                options["store"] = new.store
            if new.executor:
                options["executor"] = new.executor
            task = self.scheduler.add_task(fn, **options)
        except (FormError, AsynczException, TypeError, ValueError, LookupError) as exc:
            self.audit(
                request,
                "task.create",
                None,
                task_name=str(form.get("name") or ""),
                outcome="error",
                detail=str(exc),
            )
            return self.form_error(request, exc)
        self.audit(
            request,
            "task.create",
            task.id,
            task_name=task.name,
            outcome="ok",
            detail=f"Created task {task.name or task.id} ({new.callable_path})",
        )
        if not is_htmx(request):
            return self._back_to_table(request, filters, "create")
        return self.table(request, filters, toast=f"Created {task.name or task.id}")

    def _back_to_table(self, request: Request, filters: TaskFilters, done: str) -> Response:
        """A plain form post (no scripts) goes back to the table it came from, with a notice."""
        query = filters.query(page=filters.page)
        parts = (query, f"done={done}")
        target = self.urls(request).section("tasks") + "?" + "&".join(p for p in parts if p)
        return RedirectResponse(target, status_code=303)

    def form_error(self, request: Request, exc: Exception) -> HTMLResponse:
        field = getattr(exc, "field", "")
        return self.render(
            request,
            "partials/form_error.html",
            status_code=400,
            headers={"hx-retarget": "#az-form-error", "hx-reswap": "innerHTML"},
            field=field,
            message=str(exc),
        )

    def _apply(self, action: str, task_id: str, *, wait: float = 0.0) -> None:
        if action == "run":
            history = self.admin.run_history
            mark = history.watermark() if wait and hasattr(history, "watermark") else None
            # As Asyncz: a one-off task run by hand stays (paused), to be looked at or removed.
            self.scheduler.run_task(task_id, remove_finished=False)
            if mark is not None:
                # A short run's outcome is then on the page this action answers with; a long
                # one shows as running (this is a worker thread: blocking here is fine).
                history.wait_for_runs(task_id, since=mark, timeout=wait)
        elif action == "pause":
            self.scheduler.pause_task(task_id)
        elif action == "resume":
            self.scheduler.resume_task(task_id)
        else:
            self.scheduler.delete_task(task_id)

    def action(self, request: Request, form: Any = None) -> Response:
        task_id = request.path_params["task_id"]
        action = request.path_params["action"]
        if action not in ACTIONS:
            return self.not_found(request, f"No such action: {action}; valid: {', '.join(ACTIONS)}")
        info = self.scheduler.get_task_info(task_id)
        if info is None:
            return self.not_found(request, f"Task not found: {task_id}")
        try:
            self._apply(action, task_id, wait=RUN_WAIT)
        except TaskLookupError:  # removed meanwhile
            return self.not_found(request, f"Task not found: {task_id}")
        except AsynczException as exc:  # already running max_instances times, stopped, ...
            self.audit(
                request,
                f"task.{action}",
                task_id,
                task_name=info.name,
                outcome="error",
                detail=str(exc),
            )
            return self.not_found(
                request, f"Could not {action} task {task_id}: {exc}", status_code=409
            )
        self.audit(
            request,
            f"task.{action}",
            task_id,
            task_name=info.name,
            outcome="ok",
            detail=f"{_ACTION_DONE[action]}: {info.name or task_id}",
        )
        toast = f"{_ACTION_DONE[action]}: {info.name or task_id}"
        if is_htmx(request):
            return self.table(request, self._filters_from_form(request, form), toast=toast)
        urls = self.urls(request)
        if action != "remove" and self.scheduler.get_task_info(task_id) is not None:
            return RedirectResponse(urls.path("tasks", task_id, query={"done": action}), 303)
        return RedirectResponse(urls.section("tasks") + f"?done={action}", status_code=303)

    def bulk(self, request: Request, form: Any = None) -> Response:
        action = request.path_params["action"]
        if action not in ACTIONS:
            return self.not_found(request, f"No such action: {action}; valid: {', '.join(ACTIONS)}")
        try:
            ids = _bulk_ids(form)
        except FormError as exc:
            return self.form_error(request, exc)
        done: list[str] = []
        failed: list[str] = []
        for task_id in ids:
            try:
                self._apply(action, task_id)
            except (TaskLookupError, AsynczException) as exc:
                failed.append(f"{task_id}: {exc}")
                continue
            done.append(task_id)
        self.audit(
            request,
            f"task.bulk_{action}",
            None,
            outcome="error" if failed and not done else ("warning" if failed else "ok"),
            detail=f"{_ACTION_DONE[action]} {len(done)} of {len(ids)} tasks"
            + (f"; not done: {'; '.join(failed)}" if failed else ""),
        )
        toast = f"{_ACTION_DONE[action]} {len(done)} of {len(ids)} tasks"
        filters = self._filters_from_form(request, form)
        if is_htmx(request):
            return self.table(request, filters, toast=toast)
        return self._back_to_table(request, filters, action)

    # -- editing ---------------------------------------------------------------------------

    def _current_fields(self, task_id: str, info: Any) -> dict[str, Any]:
        args: Any = None
        kwargs: Any = None
        get_task = getattr(self.scheduler, "get_task", None)
        if get_task is not None:
            task = get_task(task_id)
            if task is not None:
                args, kwargs = list(task.args), dict(task.kwargs)
        return {
            "name": info.name,
            "callable": _callable_text(info),
            "args": args,
            "kwargs": kwargs,
            "executor": info.executor,
            "coalesce": info.coalesce,
            "max_instances": info.max_instances,
            "mistrigger_grace_time": info.mistrigger_grace_time,
        }

    def _check(self, task_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """The changes as ``update_task`` takes them, checked without applying anything."""
        update: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "callable":
                update["fn"] = self.admin.resolve_callable(value)
            else:
                update[key] = value
        executor = update.get("executor")
        if executor is not None:
            aliases = self.scheduler.get_scheduler_info().executor_aliases
            if executor not in aliases:
                raise FormError(
                    "executor",
                    f"no executor {executor!r}; this scheduler has {', '.join(aliases)}",
                )
        get_task = getattr(self.scheduler, "get_task", None)
        task = get_task(task_id) if get_task is not None else None
        if task is not None:
            task.validate_changes(update)  # raises on a bad value; changes nothing
        return update

    def edit(self, request: Request, form: Any = None) -> Response:
        task_id = request.path_params["task_id"]
        info = self.scheduler.get_task_info(task_id)
        if info is None:
            return self.not_found(request, f"Task not found: {task_id}")
        before = self._current_fields(task_id, info)
        if request.method == "GET":
            return self.render(
                request, "task_edit.html", section="tasks", task=info, fields=before, values=before
            )
        intent = str(form.get("intent") or "preview")
        values = dict(before)
        values.update({k: v for k, v in form.items() if k in EDIT_FIELDS})
        if form.get("callable_path"):
            values["callable"] = form.get("callable_path")
        try:
            changes = parse_edit_form(form)
            update = self._check(task_id, changes)
        except (
            FormError,
            AsynczException,
            TypeError,
            ValueError,
            LookupError,
            AttributeError,
        ) as exc:
            return self.render(
                request,
                "task_edit.html",
                status_code=400,
                section="tasks",
                task=info,
                fields=before,
                values=values,
                error=str(exc),
            )
        diff = [
            (key, before.get(key), changes[key])
            for key in EDIT_FIELDS
            if key in changes and before.get(key) != changes[key]
        ]
        applied = False
        if intent == "apply" and diff:
            try:
                self.scheduler.update_task(task_id, **{k: update[_field(k)] for k, _, _ in diff})
            except (AsynczException, TypeError, ValueError, LookupError) as exc:
                self.audit(
                    request,
                    "task.update",
                    task_id,
                    task_name=info.name,
                    outcome="error",
                    detail=str(exc),
                )
                return self.render(
                    request,
                    "task_edit.html",
                    status_code=409,
                    section="tasks",
                    task=info,
                    fields=before,
                    values=values,
                    error=f"Not applied: {exc}",
                )
            applied = True
            self.audit(
                request,
                "task.update",
                task_id,
                task_name=changes.get("name", info.name),
                outcome="ok",
                detail="Changed " + ", ".join(key for key, _, _ in diff),
                changes={key: (old, new) for key, old, new in diff},
            )
            info = self.scheduler.get_task_info(task_id) or info
        return self.render(
            request,
            "task_edit.html",
            section="tasks",
            task=info,
            fields=before,
            values=values,
            diff=diff,
            applied=applied,
            intent=intent,
        )


def _field(key: str) -> str:
    return "fn" if key == "callable" else key


def _bulk_ids(form: Mapping[str, Any]) -> list[str]:
    """The task ids of a bulk action: ``ids`` as a JSON array, or repeated ``row`` fields."""
    raw = form.get("ids")
    ids: list[str] = []
    if raw:
        try:
            value = json.loads(str(raw))
        except json.JSONDecodeError:
            raise FormError("ids", f"ids must be a JSON array of task ids, got {raw!r}") from None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise FormError("ids", f"ids must be a JSON array of task ids, got {raw!r}")
        ids = value
    getlist = getattr(form, "getall", None) or getattr(form, "getlist", None)
    if getlist is not None and "row" in form:
        ids.extend(str(item) for item in getlist("row"))
    if not ids:
        raise FormError("ids", "select at least one task")
    if len(ids) > _MAX_BULK:
        raise FormError("ids", f"at most {_MAX_BULK} tasks at once, got {len(ids)}")
    return list(dict.fromkeys(ids))
