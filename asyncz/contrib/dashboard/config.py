"""The dashboard's presentation and session settings (Asyncz's ``DashboardConfig``).

Here: :class:`DashboardConfig`. ``AsynczAdmin(config=...)`` takes one; without it the defaults
below apply, with ``title`` and ``url_prefix`` from the admin's own arguments.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs

_SAME_SITE = ("lax", "strict")


def _check_same_site(
    instance: DashboardConfig, attribute: attrs.Attribute[Any], value: str
) -> None:
    # "none" would send the session cookie on cross-site requests: the login would then be a
    # cross-site request forgery vector, so it is not offered.
    if value not in _SAME_SITE:
        raise ValueError(f"same_site must be one of {', '.join(_SAME_SITE)}, got {value!r}")


def _check_max_age(instance: DashboardConfig, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"max_age must be a positive number of seconds, got {value!r}")


@attrs.frozen(kw_only=True)
class DashboardConfig:
    """How the dashboard looks and how its login session behaves.

    :var title: the browser tab's title
    :var header_title: the name in the sidebar
    :var description: a line under the overview's heading
    :var dashboard_url_prefix: where ``include_in`` mounts the dashboard
    :var secret_key: signs the session cookie; ``None`` draws a random key at start-up (sessions
        then end when the process does, and each process of a multi-process server has its own:
        set one key for all of them)
    :var session_cookie: the cookie's name
    :var max_age: how long a login lasts, in seconds
    :var same_site: ``"lax"`` (the default) or ``"strict"``
    :var https_only: mark the cookie ``Secure`` always; it is marked so anyway on HTTPS requests
    :var domain: the cookie's domain, if it must be shared with sibling hosts
    """

    title: str = "Asyncz"
    header_title: str = "Asyncz"
    description: str = "Scheduler dashboard"
    dashboard_url_prefix: str = "/dashboard"
    secret_key: str | None = attrs.field(default=None, repr=False)
    session_cookie: str = "asyncz_admin"
    max_age: int = attrs.field(
        default=int(timedelta(days=14).total_seconds()), validator=_check_max_age
    )
    same_site: str = attrs.field(default="lax", validator=_check_same_site)
    https_only: bool = False
    domain: str | None = None
