"""The dashboard's pages and actions (Lilya handlers) and the Jinja2 environment.

Here: :class:`DashboardViews`. Every value reaches the page through a Jinja2 template with
autoescaping on for every template, so a task name or an error message is shown as text, never
run. Path parameters are only used to look a task up by id; nothing a request sends is imported,
evaluated or unpickled. Static files are served from a fixed list read at start-up, never from a
path the request names.
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader
from lilya.requests import Request
from lilya.responses import HTMLResponse, RedirectResponse, Response

from asyncz.exceptions import AsynczException, TaskLookupError

if TYPE_CHECKING:
    from asyncz.contrib.dashboard.admin import AsynczAdmin

_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_ACTIONS = ("run", "pause", "resume", "remove")


def _format_time(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.isoformat(sep=" ", timespec="seconds")


def _format_seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s"


def _load_static() -> dict[str, tuple[bytes, str]]:
    """Every servable file under ``statics/``, by its path there (``css/asyncz.css``)."""
    files: dict[str, tuple[bytes, str]] = {}
    pending = [("", resources.files("asyncz.contrib.dashboard").joinpath("statics"))]
    while pending:
        base, folder = pending.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                pending.append((f"{base}{entry.name}/", entry))
                continue
            suffix = entry.name[entry.name.rfind(".") :]
            if suffix in _STATIC_TYPES:
                files[base + entry.name] = (entry.read_bytes(), _STATIC_TYPES[suffix])
    return files


class DashboardViews:
    """The handlers of one :class:`AsynczAdmin`."""

    def __init__(self, admin: AsynczAdmin) -> None:
        self.admin = admin
        self.env = Environment(
            loader=PackageLoader("asyncz.contrib.dashboard", "templates"),
            autoescape=True,  # every template, whatever its file name
            auto_reload=False,
        )
        self.env.filters["time"] = _format_time
        self.env.filters["seconds"] = _format_seconds
        self.env.filters["q"] = _quote
        self.static_files = _load_static()

    @property
    def scheduler(self) -> Any:
        return self.admin.scheduler

    def prefix(self, request: Request) -> str:
        """Where the pages are, as the browser sees them (a trusted proxy's prefix first)."""
        return str(request.scope.get("app_root_path", "")) + self.admin.url_prefix

    def render(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        page = self.env.get_template(template).render(
            prefix=self.prefix(request), title=self.admin.title, **context
        )
        return HTMLResponse(page, status_code=status_code)

    def not_found(self, request: Request, message: str) -> HTMLResponse:
        return self.render(
            request, "not_found.html", status_code=404, page="tasks", message=message
        )

    async def tasks(self, request: Request) -> Response:
        infos = self.scheduler.get_task_infos()
        return self.render(
            request,
            "tasks.html",
            page="tasks",
            tasks=infos,
            info=self.scheduler.get_scheduler_info(),
            notice=request.query_params.get("done"),
        )

    async def task_detail(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        info = self.scheduler.get_task_info(task_id)
        if info is None:
            return self.not_found(request, f"Task not found: {task_id}")
        preview = self.scheduler.preview_task_runs(task_id, count=self.admin.preview_count)
        runs = self.scheduler.get_task_runs(task_id, limit=self.admin.recent_runs)
        return self.render(
            request,
            "task_detail.html",
            page="tasks",
            task=info,
            preview=preview,
            runs=runs,
            notice=request.query_params.get("done"),
        )

    async def task_action(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        action = request.path_params["action"]
        if action not in _ACTIONS:
            return self.not_found(request, f"No such action: {action}")
        if self.scheduler.get_task_info(task_id) is None:
            return self.not_found(request, f"Task not found: {task_id}")
        try:
            if action == "run":
                self.scheduler.run_task(task_id)
            elif action == "pause":
                self.scheduler.pause_task(task_id)
            elif action == "resume":
                self.scheduler.resume_task(task_id)
            else:
                self.scheduler.delete_task(task_id)
        except TaskLookupError:  # removed meanwhile
            return self.not_found(request, f"Task not found: {task_id}")
        except AsynczException as exc:  # e.g. already running max_instances times, stopped
            return self.render(
                request,
                "not_found.html",
                status_code=409,
                page="tasks",
                heading="Not done",
                message=f"Could not {action} task {task_id}: {exc}",
            )
        if action == "remove":
            return RedirectResponse(f"{self.prefix(request)}/tasks?done=remove", status_code=303)
        if self.scheduler.get_task_info(task_id) is None:  # a finished trigger removes it
            return RedirectResponse(f"{self.prefix(request)}/tasks?done={action}", 303)
        return RedirectResponse(
            f"{self.prefix(request)}/tasks/{_quote(task_id)}?done={action}", status_code=303
        )

    async def instances(self, request: Request) -> Response:
        return self.render(
            request,
            "instances.html",
            page="instances",
            instances=self.scheduler.get_scheduler_instance_infos(),
        )

    async def static(self, request: Request) -> Response:
        found = self.static_files.get(request.path_params["name"])  # a key, never a file path
        if found is None:
            return Response("Not found\n", status_code=404, media_type="text/plain")
        body, media_type = found
        return Response(
            body, media_type=media_type, headers={"cache-control": "public, max-age=3600"}
        )


def _quote(value: str) -> str:
    """A task id as one URL path segment (a ``/`` in an id must not split it)."""
    return quote(str(value), safe="")
