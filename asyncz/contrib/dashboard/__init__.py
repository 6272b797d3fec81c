"""The browser dashboard: an ASGI app (Lilya, Jinja2) that shows and operates a scheduler.

Here: the public names (:class:`AsynczAdmin`). The app and its pages live in
:mod:`asyncz.contrib.dashboard.admin` and :mod:`asyncz.contrib.dashboard.views`; the response
headers and the cross-site POST guard in :mod:`asyncz.contrib.dashboard.security`.

The dashboard is a client of the scheduler's public API like any user code: it never reads a
store directly, never unpickles anything a request carries and never imports a name a request
gives it.
"""

from __future__ import annotations

try:
    import jinja2  # noqa: F401
    import lilya  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"the asyncz dashboard needs {exc.name!r}, which is not installed; "
        "install it with: pip install 'asyncz[dashboard]'"
    ) from exc

from asyncz.contrib.dashboard.admin import AsynczAdmin, SimpleUsernamePasswordBackend, User
from asyncz.contrib.dashboard.logs.handler import get_task_logger
from asyncz.contrib.dashboard.remote import (
    RemoteSchedulerClient,
    RemoteSchedulerError,
    create_remote_scheduler_app,
)

__all__ = [
    "AsynczAdmin",
    "RemoteSchedulerClient",
    "RemoteSchedulerError",
    "SimpleUsernamePasswordBackend",
    "User",
    "create_remote_scheduler_app",
    "get_task_logger",
]
