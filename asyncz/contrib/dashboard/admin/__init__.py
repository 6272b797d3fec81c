"""``AsynczAdmin``: builds the dashboard's ASGI app and mounts it in a Lilya or Starlette app.

Here: :class:`AsynczAdmin` (configuration, the storages it reads and feeds, the routes, the
middleware stack, ``include_in``). The pages: :mod:`asyncz.contrib.dashboard.controllers`; the
login: :mod:`asyncz.contrib.dashboard.admin.auth`.

The stack, outermost first: the security headers and cross-site POST guard, the trusted proxy
prefix (optional), the login gate (optional), the section-page slash rule, the routes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

import anyio.to_thread
from lilya.apps import Lilya
from lilya.requests import Request
from lilya.responses import Response
from lilya.routing import Include, Path

from asyncz.contrib.dashboard.admin.auth import (
    AuthBackend,
    LoginGate,
    SessionSigner,
    SimpleUsernamePasswordBackend,
    User,
)
from asyncz.contrib.dashboard.admin.middleware.forward_root_path import (
    ForwardedPrefixMiddleware,
)
from asyncz.contrib.dashboard.audit import get_audit_storage
from asyncz.contrib.dashboard.callables import CallablePolicy
from asyncz.contrib.dashboard.charts import outcome_chart
from asyncz.contrib.dashboard.config import DashboardConfig
from asyncz.contrib.dashboard.controllers.auth import AuthPages
from asyncz.contrib.dashboard.controllers.base import make_environment
from asyncz.contrib.dashboard.controllers.overview import OverviewPages
from asyncz.contrib.dashboard.controllers.review import ReviewPages
from asyncz.contrib.dashboard.controllers.tasks import TaskPages
from asyncz.contrib.dashboard.events import attach_event_recorder, get_scheduler_event_storage
from asyncz.contrib.dashboard.history import (
    MemoryRunHistoryStorage,
    StoreRunHistory,
    attach_run_history,
)
from asyncz.contrib.dashboard.logs.handler import install_task_log_handler
from asyncz.contrib.dashboard.logs.storage import get_log_storage
from asyncz.contrib.dashboard.remote import RemoteSchedulerClient
from asyncz.contrib.dashboard.security import (
    SECURITY_HEADERS,
    ASGIApp,
    Receive,
    Scope,
    SecurityMiddleware,
    Send,
)

__all__ = ["AsynczAdmin", "AuthBackend", "SimpleUsernamePasswordBackend", "User"]

logger = logging.getLogger("asyncz.contrib.dashboard")

#: The pages that are a section's front page: served at ``<prefix>/<name>/`` so that their
#: relative ``hx-get="partials/table"`` stays inside the section.
SECTIONS = ("tasks", "runtime", "instances", "timeline", "events", "audit", "history", "logs")

_STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".ico": "image/x-icon",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}


def _static_type(name: str) -> str | None:
    dot = name.rfind(".")
    if dot <= 0:  # LICENSE, COPYING
        return "text/plain; charset=utf-8" if name.isupper() else None
    return _STATIC_TYPES.get(name[dot:].lower())


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
            media_type = _static_type(entry.name)
            if media_type is not None:
                files[base + entry.name] = (entry.read_bytes(), media_type)
    return files


class _SectionSlash:
    """Section front pages live at ``<name>/``: a GET of ``<name>`` is sent there (with a
    relative ``Location``, right behind any proxy prefix). Every other path is routed without
    its trailing slash."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        root = str(scope.get("root_path", ""))
        # Mounted apps see the full path with the mount point as root_path (Lilya, Starlette).
        rest = path[len(root) :] if root and path.startswith(root) else path
        method = str(scope.get("method", "GET")).upper()
        if (
            method in {"GET", "HEAD"}
            and (rest == "" or rest.strip("/") in SECTIONS)
            and not rest.endswith("/")
        ):
            last = (root if rest == "" else rest).rstrip("/").rsplit("/", 1)[-1]
            query = scope.get("query_string") or b""
            location = f"{last}/" + (f"?{query.decode('latin-1')}" if query else "")
            await send(
                {
                    "type": "http.response.start",
                    "status": 307,
                    "headers": [
                        (b"location", location.encode("latin-1")),
                        (b"content-length", b"0"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        if len(rest) > 1 and rest.endswith("/"):
            scope = dict(scope, path=path.rstrip("/") or "/")
            raw = scope.get("raw_path")
            if raw:
                scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


def _normalize_prefix(prefix: str) -> str:
    if not isinstance(prefix, str):
        raise TypeError(f"url_prefix must be a string such as '/dashboard', got {prefix!r}")
    prefix = "/" + prefix.strip("/")
    return "" if prefix == "/" else prefix


def _positive_int(name: str, value: Any, highest: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if highest is not None and value > highest:
        raise ValueError(f"{name} must be between 1 and {highest}, got {value!r}")
    return value


class AsynczAdmin:
    """The dashboard of one scheduler (or of a :class:`~asyncz.contrib.dashboard.remote.
    RemoteSchedulerClient` standing for one in another process).

    :param scheduler: the scheduler to show and operate
    :param url_prefix: where :meth:`include_in` mounts it (default ``config.dashboard_url_prefix``,
        ``"/dashboard"``); ``""`` for the root
    :param enable_login: ask for a login (needs ``backend``)
    :param backend: checks logins, e.g. :class:`SimpleUsernamePasswordBackend`
    :param config: a :class:`~asyncz.contrib.dashboard.config.DashboardConfig` (titles, session)
    :param log_storage: where captured log records are kept (default: the process-wide memory
        storage)
    :param run_history_storage: run history kept from this process's scheduler events (default:
        a memory storage); runs recorded by the stores (every scheduler sharing them) are shown
        beside it
    :param audit_storage: the trail of dashboard actions (default: the process-wide memory one)
    :param event_storage: scheduler events seen by this process (default: the process-wide one)
    :param allowed_callables: which callables the forms may name (see
        :class:`~asyncz.contrib.dashboard.callables.CallablePolicy`; ``None``: application code
        only, never the standard library or installed packages)
    :param preview_count: upcoming run times on a task page (1-50)
    :param recent_runs: run records and log lines on a task page
    :param enable_forward_middleware: believe ``X-Forwarded-Prefix`` from
        ``trusted_forwarded_hosts`` (addresses, networks such as ``"10.0.0.0/8"``, or ``"*"``)
    :param include_session: Asyncz's switch for its session middleware; the login here uses
        its own signed cookie, so this only exists for compatibility
    :param include_cors: accepted for compatibility; the dashboard never answers cross-origin
        requests with CORS headers (that would let other sites read it)
    """

    def __init__(
        self,
        scheduler: Any,
        url_prefix: str | None = None,
        *,
        enable_login: bool = False,
        backend: AuthBackend | None = None,
        config: DashboardConfig | None = None,
        title: str | None = None,
        log_storage: Any = None,
        run_history_storage: Any = None,
        audit_storage: Any = None,
        event_storage: Any = None,
        allowed_callables: Iterable[str] | None = None,
        preview_count: int = 5,
        recent_runs: int = 20,
        enable_forward_middleware: bool = False,
        trusted_forwarded_hosts: Iterable[str] = ("127.0.0.1", "::1"),
        include_session: bool = True,
        include_cors: bool = False,
    ) -> None:
        if scheduler is None:
            raise TypeError("AsynczAdmin needs a scheduler (or a RemoteSchedulerClient)")
        if enable_login and backend is None:
            raise ValueError(
                "enable_login=True needs a backend, e.g. "
                "backend=SimpleUsernamePasswordBackend(verify)"
            )
        if config is None:
            config = DashboardConfig()
        if title is not None:
            config = DashboardConfig(
                **{**_config_fields(config), "title": title, "header_title": title}
            )
        self.config = config
        self.scheduler = scheduler
        self.url_prefix = _normalize_prefix(
            config.dashboard_url_prefix if url_prefix is None else url_prefix
        )
        self.title = config.title
        self.enable_login = bool(enable_login)
        self.backend = backend
        self.preview_count = _positive_int("preview_count", preview_count, 50)
        self.recent_runs = _positive_int("recent_runs", recent_runs)
        self.enable_forward_middleware = bool(enable_forward_middleware)
        self.trusted_forwarded_hosts = tuple(
            [trusted_forwarded_hosts]
            if isinstance(trusted_forwarded_hosts, str)
            else trusted_forwarded_hosts
        )
        self.include_session = include_session
        self.include_cors = include_cors
        self.callable_policy = CallablePolicy(allowed_callables)
        self.signer = SessionSigner(config.secret_key, config.max_age)

        self.log_storage = (
            get_log_storage(storage=log_storage) if log_storage is not None else get_log_storage()
        )
        self.audit_storage = (
            get_audit_storage(storage=audit_storage)
            if audit_storage is not None
            else get_audit_storage()
        )
        self.event_storage = (
            event_storage if event_storage is not None else get_scheduler_event_storage()
        )
        local_history = (
            run_history_storage if run_history_storage is not None else MemoryRunHistoryStorage()
        )
        #: What the pages read: this process's records, and the stores' run records (the runs
        #: of every scheduler sharing them) when the scheduler can give them.
        self.run_history: Any = local_history
        if callable(getattr(scheduler, "get_task_runs", None)) and isinstance(
            local_history, MemoryRunHistoryStorage
        ):
            self.run_history = StoreRunHistory(scheduler, local=local_history)
        install_task_log_handler(self.log_storage)
        if callable(getattr(scheduler, "add_listener", None)) and not isinstance(
            scheduler, RemoteSchedulerClient
        ):
            attach_run_history(scheduler, self.run_history, self.log_storage)
            attach_event_recorder(scheduler, self.event_storage)
        self._app: ASGIApp | None = None

    # -- what the pages read ---------------------------------------------------------------

    def resolve_callable(self, reference: str) -> Any:
        """The callable a form names, if the policy allows it. For a remote scheduler the
        reference is checked here and sent as text: the worker imports it."""
        if isinstance(self.scheduler, RemoteSchedulerClient):
            self.callable_policy.check(reference)
            return reference
        return self.callable_policy.resolve(reference)

    def record_audit(self, action: str, **fields: Any) -> None:
        try:
            self.audit_storage.record(action, **fields)
        except Exception:  # an audit sink failing must not undo or hide the action
            logger.exception("Cannot record the dashboard action %r", action)

    def query_runs(
        self,
        *,
        task_id: str | None = None,
        status: str | None = None,
        q: str | None = None,
        limit: int = 100,
    ) -> list[Any]:
        """Run history, newest first."""
        try:
            return list(self.run_history.query(task_id=task_id, status=status, q=q, limit=limit))
        except Exception:  # a store that cannot be read must not take the page down
            logger.exception("Cannot read the run history")
            return []

    def recent_runs_for(self, task_id: str | None, limit: int) -> list[Any]:
        return self.query_runs(task_id=task_id, limit=limit)

    def latest_run(self, task_id: str) -> Any:
        try:
            return self.run_history.latest_for_task(task_id)
        except Exception:
            logger.exception("Cannot read the run history of task %r", task_id)
            return None

    def latest_runs(self, task_ids: Sequence[str]) -> dict[str, Any]:
        """The newest run of each task (the tasks table's "Last Run")."""
        try:
            batch = getattr(self.run_history, "latest_for_tasks", None)
            if callable(batch):
                return dict(batch(task_ids))
            found = {}
            for task_id in task_ids:
                record = self.run_history.latest_for_task(task_id)
                if record is not None:
                    found[task_id] = record
            return found
        except Exception:
            logger.exception("Cannot read the run history")
            return {}

    def get_run(self, run_id: str) -> Any:
        try:
            return self.run_history.get(run_id)
        except Exception:
            logger.exception("Cannot read run %r", run_id)
            return None

    def recent_logs(self, **filters: Any) -> list[Any]:
        return list(self.log_storage.query(**filters))

    @staticmethod
    def outcome_chart(records: Sequence[Any]) -> Any:
        return outcome_chart(records)

    def cookie_path(self, request: Request) -> str:
        root = str(request.scope.get("app_root_path", "") or "").rstrip("/")
        return (root + self.url_prefix) or "/"

    # -- the app ---------------------------------------------------------------------------

    def _routes(self) -> list[Path]:
        env = make_environment()
        tasks = TaskPages(self, env)
        overview = OverviewPages(self, env)
        review = ReviewPages(self, env)
        auth = AuthPages(self, env)
        static_files = _load_static()

        async def static(request: Request) -> Response:
            found = static_files.get(request.path_params["name"])  # a key, never a file path
            if found is None:
                return Response("Not found\n", status_code=404, media_type="text/plain")
            body, media_type = found
            return Response(
                body, media_type=media_type, headers={"cache-control": "public, max-age=3600"}
            )

        async def not_found(request: Request, exc: Exception | None = None) -> Response:
            return overview.not_found(request, f"No such page: {request.url.path}")

        self._not_found = not_found

        def threaded(handler: Any) -> Any:
            """The page's work in a worker thread: the scheduler's methods may block (a remote
            scheduler waits for its worker, a store for its database) and rendering a large
            table takes a while; the event loop serves other requests meanwhile."""

            async def endpoint(request: Request) -> Response:
                form = await request.form() if request.method == "POST" else None
                return await anyio.to_thread.run_sync(handler, request, form)

            return endpoint

        return [
            Path("/", threaded(overview.index), methods=["GET"]),
            Path("/runtime", threaded(overview.runtime), methods=["GET"]),
            Path("/instances", threaded(overview.instances), methods=["GET"]),
            Path("/timeline", threaded(overview.timeline), methods=["GET"]),
            Path("/tasks", threaded(tasks.list_page), methods=["GET"]),
            Path("/tasks/partials/table", threaded(tasks.table_partial), methods=["GET"]),
            Path("/tasks/create", threaded(tasks.create), methods=["POST"]),
            Path("/tasks/hx/bulk/{action}", threaded(tasks.bulk), methods=["POST"]),
            Path("/tasks/{task_id}", threaded(tasks.detail), methods=["GET"]),
            Path("/tasks/{task_id}/edit", threaded(tasks.edit), methods=["GET", "POST"]),
            Path("/tasks/{task_id}/{action}", threaded(tasks.action), methods=["POST"]),
            Path("/events", threaded(review.events), methods=["GET"]),
            Path("/audit", threaded(review.audit), methods=["GET"]),
            Path("/history", threaded(review.history), methods=["GET"]),
            Path("/history/partials/table", threaded(review.history_partial), methods=["GET"]),
            Path("/history/{run_id}", threaded(review.run_detail), methods=["GET"]),
            Path("/logs", threaded(review.logs), methods=["GET"]),
            Path("/logs/partials/table", threaded(review.logs_partial), methods=["GET"]),
            Path("/login", auth.login_form, methods=["GET"]),
            Path("/login", auth.login, methods=["POST"]),
            Path("/logout", auth.logout, methods=["GET", "POST"]),
            Path("/static/{name:path}", static, methods=["GET"]),
        ]

    def get_asgi_app(self) -> ASGIApp:
        """The dashboard as an ASGI app (built once), to mount at :attr:`url_prefix`."""
        if self._app is None:
            routes = self._routes()
            lilya_app = Lilya(routes=routes, redirect_slashes=False)
            lilya_app.add_exception_handler(404, self._not_found)
            app: ASGIApp = _SectionSlash(lilya_app)
            if self.enable_login:
                app = LoginGate(
                    app,
                    signer=self.signer,
                    cookie=self.config.session_cookie,
                    open_paths=("/login", "/logout"),
                    open_prefixes=("/static/",),
                    login_path=self._login_path,
                )
            if self.enable_forward_middleware:
                app = ForwardedPrefixMiddleware(app, trusted_hosts=self.trusted_forwarded_hosts)
            self._app = SecurityMiddleware(app)
        return self._app

    def _login_path(self, scope: Scope) -> str:
        root = str(scope.get("app_root_path", "") or "").rstrip("/")
        return f"{root}{self.url_prefix}/login"

    def include_in(self, app: Any) -> None:
        """Mount the dashboard at :attr:`url_prefix` in ``app``: a Lilya app, or any app with
        Starlette's ``mount(path, app)`` (Starlette, FastAPI).

        In a Lilya app that has no handler of its own for 404, the dashboard's not-found page
        becomes the app's; with login on and a prefix, ``/login`` and ``/logout`` at the app's
        root lead to the dashboard's (unless the app has routes there), as in Asyncz."""
        asgi = self.get_asgi_app()
        prefix = self.url_prefix or "/"
        if isinstance(app, Lilya):
            app.router.routes.append(Include(prefix, app=asgi))
            if self.url_prefix:
                if self.enable_login:
                    taken = {getattr(r, "path", None) for r in app.router.routes}
                    for name in ("login", "logout"):
                        if f"/{name}" not in taken:
                            app.router.routes.insert(0, Include(f"/{name}", app=self._alias(name)))
                if 404 not in app.exception_handlers:
                    app.add_exception_handler(404, self._host_not_found)
        elif callable(getattr(app, "mount", None)):
            app.mount(self.url_prefix, asgi)
        else:
            raise TypeError(
                f"cannot mount the dashboard in {type(app).__name__}: pass a Lilya app, a "
                "Starlette or FastAPI app, or mount AsynczAdmin.get_asgi_app() yourself"
            )

    def _alias(self, name: str) -> ASGIApp:
        """An app serving the dashboard's ``/<name>`` page at the host's ``/<name>``."""
        inner = self.get_asgi_app()
        prefix = self.url_prefix

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return
            inner_scope = dict(scope, root_path=prefix, path=f"{prefix}/{name}")
            inner_scope["raw_path"] = inner_scope["path"].encode()
            await inner(inner_scope, receive, send)

        return app

    async def _host_not_found(self, request: Request, exc: Exception) -> Response:
        self.get_asgi_app()
        response = await self._not_found(request, exc)
        for name, value in SECURITY_HEADERS:
            response.headers[name.decode()] = value.decode()
        return response


def _config_fields(config: DashboardConfig) -> dict[str, Any]:
    import attrs

    return attrs.asdict(config)
