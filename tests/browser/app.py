"""The application the browser test serves with uvicorn (``python -m tests.browser.app --fd N``).

A Lilya app with an :class:`~asyncz.schedulers.AsyncIOScheduler` on a SQLite store in the
folder named by ``ASYNCZ_BROWSER_DATA`` (run history and instances come from the store), and the
dashboard under ``/dashboard`` with its login on. The callables the dashboard's form may name
live here: application code, which the dashboard's default callable policy allows.

A few tasks are there from the start so that the pages (and the screenshots in the docs) show
something: two that run in an hour or more, and one that fails once at start-up.
"""

from __future__ import annotations

import hmac
import logging
import os
from datetime import datetime, timedelta, timezone

from lilya.apps import Lilya

from asyncz.contrib.dashboard import AsynczAdmin
from asyncz.contrib.dashboard.admin import SimpleUsernamePasswordBackend, User
from asyncz.schedulers import AsyncIOScheduler

USERNAME = "admin"
PASSWORD = "correct horse battery staple"
#: The task the test creates names this callable in the form.
GREET_REFERENCE = "tests.browser.app:greet"

logger = logging.getLogger("tests.browser.app")


def greet(who: str = "world") -> str:
    """What the test's task runs: logs a line and returns."""
    logger.info("Hello, %s", who)
    return f"hello {who}"


def nightly_report() -> None:
    logger.info("Report written")


def sync_invoices() -> None:
    raise RuntimeError("the invoice service answered 503")


def _verify(username: str, password: str) -> User | None:
    good_user = hmac.compare_digest(username.encode(), USERNAME.encode())
    good_password = hmac.compare_digest(password.encode(), PASSWORD.encode())
    return User(id=USERNAME, name="Admin") if good_user and good_password else None


def create_app() -> Lilya:
    data = os.environ.get("ASYNCZ_BROWSER_DATA")
    if not data:
        raise RuntimeError("set ASYNCZ_BROWSER_DATA to the folder for the SQLite store")
    database = os.path.join(data, "tasks.sqlite")
    scheduler = AsyncIOScheduler(
        timezone="UTC",
        stores={"default": {"type": "sqlalchemy", "database": f"sqlite:///{database}"}},
    )
    now = datetime.now(timezone.utc)
    scheduler.add_task(
        nightly_report, "cron", hour=2, minute=30, id="nightly-report", name="Nightly report"
    )
    scheduler.add_task(
        greet,
        "interval",
        hours=6,
        args=["ops"],
        id="greet-ops",
        name="Greet the ops team",
        start_at=now + timedelta(hours=1),
    )
    scheduler.add_task(sync_invoices, id="sync-invoices", name="Sync invoices")
    app = Lilya(on_startup=[scheduler.start], on_shutdown=[scheduler.shutdown])
    AsynczAdmin(
        scheduler=scheduler,
        enable_login=True,
        backend=SimpleUsernamePasswordBackend(_verify),
    ).include_in(app)
    return app


def main(argv: list[str] | None = None) -> None:
    """Serve :func:`create_app` on a listening socket inherited from the test (``--fd N``), so
    the test chooses a free port without a race."""
    import argparse
    import socket

    import uvicorn

    parser = argparse.ArgumentParser(description="Serve the browser test's dashboard app.")
    parser.add_argument("--fd", type=int, required=True, help="a listening TCP socket's fd")
    options = parser.parse_args(argv)
    sock = socket.socket(fileno=options.fd)  # family and type read from the descriptor
    # By its import path, not the function: run as ``python -m`` this file is ``__main__``,
    # and the tasks' callables must be named ``tests.browser.app:...`` as the form names them.
    config = uvicorn.Config(
        "tests.browser.app:create_app", factory=True, log_level="warning", lifespan="on"
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
