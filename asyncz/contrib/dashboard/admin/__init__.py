"""``AsynczAdmin``: builds the dashboard's ASGI app and mounts it in a Lilya or Starlette app.

Here: :class:`AsynczAdmin` (configuration, the Lilya app with its routes, ``include_in``). The
pages themselves: :mod:`asyncz.contrib.dashboard.views`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lilya.apps import Lilya
from lilya.routing import Include, Path

from asyncz.contrib.dashboard.admin.middleware.forward_root_path import (
    ForwardedPrefixMiddleware,
)
from asyncz.contrib.dashboard.security import ASGIApp, SecurityMiddleware
from asyncz.contrib.dashboard.views import DashboardViews


class _TrailingSlash:
    """Serves ``/tasks/`` as ``/tasks`` (Asyncz's links end in a slash; ours do not), without
    a redirect."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        # Mounted apps see the full path with the mount point as root_path (Lilya, Starlette):
        # the mount point followed by "/" is the dashboard's own root, and keeps its slash.
        rest = path[len(root) :] if root and path.startswith(root) else path
        if scope["type"] == "http" and len(rest) > 1 and rest.endswith("/"):
            scope = dict(scope, path=path.rstrip("/") or "/")
            raw = scope.get("raw_path")
            if raw:
                scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


def _normalize_prefix(prefix: str) -> str:
    if not isinstance(prefix, str):
        raise TypeError(f"url_prefix must be a string, got {prefix!r}")
    prefix = "/" + prefix.strip("/")
    return "" if prefix == "/" else prefix


class AsynczAdmin:
    """The dashboard of one scheduler.

    ``url_prefix`` is where :meth:`include_in` mounts it (``"/dashboard"``, or ``""`` for the
    root); the pages link to each other under it. ``title`` names the dashboard in the page
    headers. ``preview_count`` (1-50) is how many upcoming run times a task page lists, and
    ``recent_runs`` how many run records. Behind a reverse proxy that serves the app under a
    path of its own, ``enable_forward_middleware=True`` puts the proxy's ``X-Forwarded-Prefix``
    in front of every link, when the request comes from one of ``trusted_forwarded_hosts``
    (IP addresses, networks such as ``"10.0.0.0/8"``, or ``"*"``).

    This first version shows the tasks, one task, and the scheduler instances, and can run,
    pause, resume and remove a task (POST only; cross-site POSTs are refused).
    """

    def __init__(
        self,
        scheduler: Any,
        url_prefix: str = "/dashboard",
        *,
        title: str = "Asyncz",
        preview_count: int = 5,
        recent_runs: int = 20,
        enable_forward_middleware: bool = False,
        trusted_forwarded_hosts: Iterable[str] = ("127.0.0.1", "::1"),
    ) -> None:
        if scheduler is None:
            raise TypeError("AsynczAdmin needs a scheduler")
        if isinstance(preview_count, bool) or not isinstance(preview_count, int):
            raise TypeError(f"preview_count must be an integer, got {preview_count!r}")
        if not 1 <= preview_count <= 50:
            raise ValueError(f"preview_count must be between 1 and 50, got {preview_count!r}")
        if isinstance(recent_runs, bool) or not isinstance(recent_runs, int) or recent_runs < 1:
            raise ValueError(f"recent_runs must be a positive integer, got {recent_runs!r}")
        self.scheduler = scheduler
        self.url_prefix = _normalize_prefix(url_prefix)
        self.title = title
        self.preview_count = preview_count
        self.recent_runs = recent_runs
        self.enable_forward_middleware = bool(enable_forward_middleware)
        self.trusted_forwarded_hosts = tuple(
            [trusted_forwarded_hosts]
            if isinstance(trusted_forwarded_hosts, str)
            else trusted_forwarded_hosts
        )
        self._app: ASGIApp | None = None

    def get_asgi_app(self) -> ASGIApp:
        """The dashboard as an ASGI app (built once), to mount at :attr:`url_prefix`."""
        if self._app is None:
            views = DashboardViews(self)
            lilya_app = Lilya(
                routes=[
                    Path("/", views.tasks, methods=["GET"]),
                    Path("/tasks", views.tasks, methods=["GET"]),
                    Path("/tasks/{task_id}", views.task_detail, methods=["GET"]),
                    Path("/tasks/{task_id}/{action}", views.task_action, methods=["POST"]),
                    Path("/instances", views.instances, methods=["GET"]),
                    Path("/static/{name:path}", views.static, methods=["GET"]),
                ],
                redirect_slashes=False,
            )
            app: ASGIApp = _TrailingSlash(lilya_app)
            if self.enable_forward_middleware:
                app = ForwardedPrefixMiddleware(app, trusted_hosts=self.trusted_forwarded_hosts)
            self._app = SecurityMiddleware(app)
        return self._app

    def include_in(self, app: Any) -> None:
        """Mount the dashboard at :attr:`url_prefix` in ``app``: a Lilya app, or any app with
        Starlette's ``mount(path, app)`` (Starlette, FastAPI)."""
        asgi = self.get_asgi_app()
        prefix = self.url_prefix or "/"
        if isinstance(app, Lilya):
            app.router.routes.append(Include(prefix, app=asgi))
        elif callable(getattr(app, "mount", None)):
            app.mount(self.url_prefix, asgi)
        else:
            raise TypeError(
                f"cannot mount the dashboard in {type(app).__name__}: pass a Lilya app, a "
                "Starlette or FastAPI app, or mount AsynczAdmin.get_asgi_app() yourself"
            )
