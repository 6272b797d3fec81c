"""What every page shares: the Jinja2 environment, the page's URLs, rendering, query parsing.

Here: :class:`Pages` (the base of every controller), :class:`PageUrls` and the template filters.
Templates are rendered with autoescaping on for every file, so a task name or an error message
is shown as text, never run. Links come in three forms, each where a browser needs it:

- ``urls.path("tasks", id)``: a path from the host's root (``/dashboard/tasks/<id>``), for
  table rows, forms and htmx requests;
- ``urls.absolute("runtime/")``: a full URL (``http://host/dashboard/runtime/``), for the
  navigation and the assets, as a proxy-aware ``url_for`` would give;
- section pages end in ``/`` so that the relative ``hx-get="partials/table"`` they contain
  resolves inside the section.

A trusted proxy's ``X-Forwarded-Prefix`` (put in the scope as ``app_root_path`` by
:class:`~asyncz.contrib.dashboard.admin.middleware.forward_root_path.ForwardedPrefixMiddleware`)
goes in front of all three.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader
from lilya.requests import Request
from lilya.responses import HTMLResponse

if TYPE_CHECKING:
    from asyncz.contrib.dashboard.admin import AsynczAdmin

#: Rows a page of the tasks table may have (Asyncz offers 25 to 200; 1,000 shows a large
#: scheduler whole).
PER_PAGE_CHOICES = (25, 50, 100, 200, 1000)


def format_time(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.isoformat(sep=" ", timespec="seconds")


def format_seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    minutes, seconds = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s"


def format_relative(value: datetime | None, now: datetime | None = None) -> str:
    """``in 5 s`` / ``3 min ago``: how far a moment is from now."""
    if value is None:
        return ""
    now = now or datetime.now(timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = (value - now).total_seconds()
    text = format_seconds(abs(delta))
    return f"in {text}" if delta >= 0 else f"{text} ago"


def segment(value: Any) -> str:
    """A value as one URL path segment (a ``/`` in a task id must not split it)."""
    return quote(str(value), safe="")


def as_json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def title_case(value: str) -> str:
    """``"task.run"`` / ``"max_instances"`` → ``"Task Run"`` / ``"Max Instances"``."""
    return " ".join(word.capitalize() for word in value.replace(".", " ").replace("_", " ").split())


def make_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("asyncz.contrib.dashboard", "templates"),
        autoescape=True,  # every template, whatever its file name
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        time=format_time,
        seconds=format_seconds,
        relative=format_relative,
        q=segment,
        tojson_text=as_json,
        title_case=title_case,
    )
    return env


class PageUrls:
    """The dashboard's URLs as the browser that made ``request`` sees them."""

    def __init__(self, request: Request, url_prefix: str) -> None:
        root = str(request.scope.get("app_root_path", "") or "").rstrip("/")
        self.base = root + url_prefix  # "/ops/dashboard", or "" at the host's root
        headers = request.headers
        scheme = request.scope.get("scheme", "http")
        host = headers.get("host")
        if not host:
            server = request.scope.get("server") or ("localhost", None)
            host = server[0] if server[1] in (None, 80, 443) else f"{server[0]}:{server[1]}"
        self.origin = f"{scheme}://{host}"

    def path(self, *parts: Any, query: Mapping[str, Any] | None = None) -> str:
        path = self.base + "".join("/" + segment(part) for part in parts)
        path = path or "/"
        if query:
            path += "?" + urlencode([(k, v) for k, v in query.items() if v not in (None, "")])
        return path

    def section(self, name: str) -> str:
        """A section's page path, ending in ``/`` (``/dashboard/tasks/``)."""
        return f"{self.base}/{name}/" if name else f"{self.base}/"

    def absolute(self, relative: str) -> str:
        return f"{self.origin}{self.base}/{relative}"

    def static(self, name: str) -> str:
        return self.absolute(f"static/{name}")


class Pages:
    """The base of every controller: the admin's configuration, its scheduler, rendering."""

    def __init__(self, admin: AsynczAdmin, env: Environment) -> None:
        self.admin = admin
        self.env = env

    @property
    def scheduler(self) -> Any:
        return self.admin.scheduler

    def urls(self, request: Request) -> PageUrls:
        return PageUrls(request, self.admin.url_prefix)

    def render(
        self,
        request: Request,
        template: str,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        page = self.env.get_template(template).render(
            request=request,
            urls=self.urls(request),
            config=self.admin.config,
            user=request.scope.get("asyncz_user"),
            login_enabled=self.admin.enable_login,
            **context,
        )
        return HTMLResponse(page, status_code=status_code, headers=dict(headers or {}))

    def not_found(self, request: Request, message: str, *, status_code: int = 404) -> HTMLResponse:
        return self.render(
            request, "not_found.html", status_code=status_code, section="", message=message
        )


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request", "").lower() == "true"


def int_param(params: Mapping[str, str], name: str, default: int, lowest: int, highest: int) -> int:
    """An integer query parameter, clamped into [lowest, highest]; junk gives the default
    (a page parameter from an old bookmark should not be an error page)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        return default
    return max(lowest, min(highest, value))


class Pagination:
    """One page of a sequence, with the numbers the table footer shows."""

    def __init__(self, items: Sequence[Any], page: int, per_page: int) -> None:
        self.total = len(items)
        self.per_page = per_page
        self.pages = max(1, math.ceil(self.total / per_page))
        self.page = max(1, min(page, self.pages))
        start = (self.page - 1) * per_page
        self.items = list(items[start : start + per_page])
        self.first = start + 1 if self.items else 0
        self.last = start + len(self.items)

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def query_string(pairs: Iterable[tuple[str, Any]]) -> str:
    """``k=v&...`` of the non-empty pairs, in the order given."""
    return urlencode([(k, v) for k, v in pairs if v not in (None, "")])
