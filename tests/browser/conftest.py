"""Fixtures of the real-browser test: the dashboard app served by uvicorn in a subprocess, a
second server on another port standing for another site, headless Chromium driven by Playwright.

The browser is Debian's ``chromium`` (``/usr/bin/chromium``, or ``ASYNCZ_CHROMIUM``), never one
Playwright downloads; ``nox -s tests`` installs it when it is missing. Without it (or without the
``playwright`` package) the tests are skipped, except under ``CI=true``, where they fail: a CI
run must not turn green by leaving the browser out.
"""

from __future__ import annotations

import html
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("ASYNCZ_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 800}
#: How long the app may take to answer its first request.
STARTUP_TIMEOUT = 30.0


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def _missing(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"{reason} (CI is set: the browser test must run there)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def playwright_api() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install 'asyncz[test]')")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(
            f"no Chromium at {CHROMIUM}: install Debian's chromium package "
            "(apt-get install chromium; nox -s tests does it as root) or set ASYNCZ_CHROMIUM"
        )
    with sync_playwright() as api:
        yield api


@pytest.fixture(scope="module")
def browser(playwright_api: Any) -> Iterator[Any]:
    browser = playwright_api.chromium.launch(executable_path=CHROMIUM, headless=True)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the pages' pictures go: ``ASYNCZ_SCREENSHOTS``, else a pytest temporary folder."""
    chosen = os.environ.get("ASYNCZ_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class DashboardServer:
    def __init__(self, base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.base_url = base_url
        self.process = process
        self.log = log

    @property
    def dashboard(self) -> str:
        return f"{self.base_url}/dashboard"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _wait_until_serving(server: DashboardServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"the dashboard app exited at start:\n{server.output()}")
        try:
            with urllib.request.urlopen(f"{server.dashboard}/login", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the dashboard app did not answer in time:\n{server.output()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    """``tests/browser/app.py`` served by uvicorn on 127.0.0.1, on a port the test binds (the
    listening socket is handed to the child, so no other process can take the port meanwhile),
    with its SQLite store in a temporary folder."""
    data = tmp_path_factory.mktemp("dashboard-app")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    log = data / "server.log"
    env = {**os.environ, "ASYNCZ_BROWSER_DATA": str(data), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.browser.app", "--fd", str(listener.fileno())],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=[listener.fileno()],
        )
    listener.close()  # the child has its own copy
    server = DashboardServer(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


#: The attacker's page: two forms aimed at the dashboard, sent by its own script as soon as it
#: loads, each into an iframe of the page (so both go out and the page stays).
ATTACK_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Win a prize</title></head>
<body>
<h1>Congratulations!</h1>
<iframe name="sink-remove" title="remove"></iframe>
<iframe name="sink-create" title="create"></iframe>
<form id="remove" method="post" action="{dashboard}/tasks/{task}/remove" target="sink-remove">
  <input type="hidden" name="filters" value="">
</form>
<form id="create" method="post" action="{dashboard}/tasks/create" target="sink-create">
  <input type="hidden" name="name" value="{name}">
  <input type="hidden" name="callable_path" value="{callable}">
  <input type="hidden" name="trigger_type" value="interval">
  <input type="hidden" name="trigger_value" value="1m">
</form>
<script>
  document.getElementById("remove").submit();
  document.getElementById("create").submit();
</script>
</body></html>
"""


class AttackerServer:
    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, host: str, *, dashboard: str, task: str, name: str, callable_path: str) -> str:
        from urllib.parse import urlencode

        query = urlencode(
            {"dashboard": dashboard, "task": task, "name": name, "callable": callable_path}
        )
        return f"http://{host}:{self.port}/prize?{query}"


class _AttackHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/prize":
            self.send_error(404)
            return
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        fields = {
            key: html.escape(query.get(key, ""), quote=True)
            for key in ("dashboard", "task", "name", "callable")
        }
        body = ATTACK_PAGE.format(**fields).encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest's output clean
        return


@pytest.fixture(scope="module")
def attacker_server() -> Iterator[AttackerServer]:
    """A page on another origin (another port of 127.0.0.1, or ``localhost``: another site)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _AttackHandler)
    thread = threading.Thread(target=httpd.serve_forever, name="attacker-site", daemon=True)
    thread.start()
    try:
        yield AttackerServer(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
