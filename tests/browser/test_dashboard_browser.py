"""The dashboard in a real browser: headless Chromium (Debian's) driven by Playwright, against the
app of ``tests/browser/app.py`` served by uvicorn with its tasks in a SQLite store.

- the operator's path: log in, create an interval task with the form, run it, find the run in the
  history, pause it on its page, remove it (accepting the confirmation), and every other page;
- the page's own behaviour: Alpine components start (the filters and new-task panels open),
  htmx swaps the tasks table (a search, the periodic refresh), no Content-Security-Policy
  violation or other console error on any page;
- a page of another origin (another port, and another site) that sends forms to the dashboard
  as soon as it opens changes nothing: refused with 403, the store unchanged.

Every page is photographed (1280x800, and the whole page as ``*.full.png``) into
``ASYNCZ_SCREENSHOTS`` (default: a pytest temporary folder);
``tools/update_dashboard_screenshots.sh`` copies the ones the docs show into
``docs/images/dashboard``. Waits are Playwright's, bounded; nothing asserts on wall-clock time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.app import GREET_REFERENCE, PASSWORD, USERNAME
from tests.browser.conftest import VIEWPORT, AttackerServer, DashboardServer

pytestmark = pytest.mark.timeout(90)

#: Bounded waits (milliseconds): a page element, and a run to finish in the scheduler.
WAIT = 10_000
RUN_WAIT = 15_000

#: Recorded in every document before its own scripts: Content-Security-Policy violations, which
#: the console reports too, written there in a form the test recognises whatever Chromium says.
CSP_PROBE = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error("CSP violation: " + event.violatedDirective + " blocked " +
    (event.blockedURI || "inline") + " in " + event.documentURI);
});
"""


def expect(*args: Any, **kwargs: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(*args, **kwargs)


class Console:
    """Every console error, page error and CSP violation of the dashboard's pages."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def watch(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))

    def _console(self, message: Any) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            self.problems.append(f"console {message.type}: {message.text} ({message.location})")


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def context(browser: Any, console: Console) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    context.add_init_script(CSP_PROBE)
    context.set_default_timeout(WAIT)
    context.on("page", console.watch)
    yield context
    context.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


def snap(page: Any, folder: Path, name: str) -> None:
    """The page as the viewport shows it (``name.png``), and whole (``name.full.png``)."""
    page.screenshot(path=str(folder / f"{name}.png"))
    page.screenshot(path=str(folder / f"{name}.full.png"), full_page=True)


def heading(page: Any) -> Any:
    return page.locator("h1.az-title")


def log_in(page: Any, server: DashboardServer) -> None:
    page.goto(f"{server.dashboard}/login")
    page.get_by_label("Username").fill(USERNAME)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(heading(page)).to_have_text("Scheduler Overview")


def open_section(page: Any, label: str, title: str) -> None:
    page.locator("nav.az-nav").get_by_role("link", name=label, exact=True).click()
    expect(heading(page)).to_have_text(title)


def task_row(page: Any, name: str) -> Any:
    return page.locator("#az-task-table tbody tr").filter(
        has=page.locator("a.az-task-name", has_text=re.compile(f"^{re.escape(name)}$"))
    )


def test_operator_path(
    page: Any,
    context: Any,
    console: Console,
    dashboard_server: DashboardServer,
    screenshots: Path,
) -> None:
    dashboard = dashboard_server.dashboard

    # Logged out: every page leads to the login form.
    page.goto(f"{dashboard}/")
    expect(page).to_have_url(f"{dashboard}/login")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    snap(page, screenshots, "login")

    page.get_by_label("Username").fill(USERNAME)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{dashboard}/")
    expect(heading(page)).to_have_text("Scheduler Overview")
    snap(page, screenshots, "overview")

    # The session cookie: HttpOnly and SameSite=Lax (no other site's form carries it).
    cookies = [c for c in context.cookies() if c["name"] == "asyncz_admin"]
    assert len(cookies) == 1, context.cookies()
    assert cookies[0]["httpOnly"] is True
    assert cookies[0]["sameSite"] == "Lax"

    # Tasks: the Alpine component runs (its panels open), htmx swaps the table on a search.
    open_section(page, "Tasks", "Tasks")
    expect(task_row(page, "Nightly report")).to_have_count(1)
    filters = page.locator("#az-filters")
    expect(filters).to_be_hidden()
    page.get_by_role("button", name="Filters", exact=True).click()
    expect(filters).to_be_visible()
    page.get_by_role("button", name="Filters", exact=True).click()
    expect(filters).to_be_hidden()

    with page.expect_response(re.compile(r"/tasks/partials/table\?")) as searched:
        page.get_by_placeholder("Search by name").fill("nightly")
    assert searched.value.status == 200
    expect(page.locator("#az-task-table tbody tr")).to_have_count(1)
    expect(task_row(page, "Nightly report")).to_have_count(1)
    with page.expect_response(re.compile(r"/tasks/partials/table\?")):
        page.get_by_placeholder("Search by name").fill("")
    expect(task_row(page, "Greet the ops team")).to_have_count(1)

    # A new interval task through the form.
    page.get_by_role("button", name="New task").click()
    create = page.locator("#az-create")
    expect(create).to_be_visible()
    create.get_by_label("Name").fill("Browser greeting")
    create.get_by_label("Callable").fill(GREET_REFERENCE)
    create.get_by_label("Trigger").select_option("interval")
    create.get_by_label("Schedule").fill("1h")
    create.get_by_label("Keyword arguments").fill('{"who": "the browser"}')
    snap(page, screenshots, "task-create")
    with page.expect_response(re.compile(r"/tasks/create$")) as created:
        create.get_by_role("button", name="Create").click()
    assert created.value.status == 200, created.value.text()
    row = task_row(page, "Browser greeting")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(GREET_REFERENCE)
    expect(row).to_contain_text("Scheduled")
    task_id = row.get_attribute("data-jid")
    assert task_id
    page.get_by_role("button", name="New task").click()  # closes the panel again
    expect(create).to_be_hidden()
    snap(page, screenshots, "tasks")

    # Run it from its row (an htmx POST that swaps the table in).
    with page.expect_response(re.compile(rf"/tasks/{re.escape(task_id)}/run$")) as ran:
        row.get_by_role("button", name="Run", exact=True).click()
    assert ran.value.status == 200
    expect(task_row(page, "Browser greeting")).to_have_count(1)

    # The run in the history, read from the store's run records.
    open_section(page, "History", "Run History")
    run_row = page.locator("#az-history-table tbody tr").filter(has_text="Browser greeting")
    succeeded = run_row.filter(has=page.locator(".az-badge", has_text="Succeeded"))
    reload_until_visible(page, succeeded)
    expect(run_row.first).to_contain_text("Manual")
    snap(page, screenshots, "history")

    # The run's own page, then the task's.
    succeeded.first.locator("td").first.get_by_role("link").click()
    expect(heading(page)).to_have_text("Run Detail")
    expect(page.locator("main")).to_contain_text("Browser greeting")
    snap(page, screenshots, "run-detail")

    page.goto(f"{dashboard}/tasks/{task_id}")
    expect(heading(page)).to_have_text("Task Detail")
    card = page.locator("main section.az-card").first
    expect(card.locator("h2")).to_contain_text("Browser greeting")
    expect(card.locator("h2 .az-badge")).to_have_text("Scheduled")
    expect(page.locator("main")).to_contain_text("Succeeded")
    snap(page, screenshots, "task-detail")

    # Pause: back on the same page, now paused.
    card.get_by_role("button", name="Pause", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/tasks/{re.escape(task_id)}\?done=pause$"))
    expect(card.locator("h2 .az-badge")).to_have_text("Paused")

    # Remove, after the confirmation the page asks for.
    questions: list[str] = []

    def accept(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    card.get_by_role("button", name="Remove", exact=True).click()
    expect(page).to_have_url(re.compile(r"/tasks/\?done=remove$"))
    assert questions == ["Remove task Browser greeting?"]
    expect(heading(page)).to_have_text("Tasks")
    expect(page.locator(f'#az-task-table tr[data-jid="{task_id}"]')).to_have_count(0)
    expect(task_row(page, "Nightly report")).to_have_count(1)
    response = page.request.get(f"{dashboard}/tasks/{task_id}")
    assert response.status == 404

    # Every other page, with its heading.
    for label, title, name in [
        ("Overview", "Scheduler Overview", None),
        ("Runtime", "Scheduler Runtime", "runtime"),
        ("Instances", "Scheduler Instances", "instances"),
        ("Timeline", "Run Timeline", "timeline"),
        ("Events", "Scheduler Events", "events"),
        ("Audit", "Audit Trail", "audit"),
        ("Logs", "Logs", "logs"),
    ]:
        open_section(page, label, title)
        if name:
            snap(page, screenshots, name)
    # The logs page has the run's outcome, written with the task's id and the run's.
    outcome = page.locator("main tbody tr").filter(has_text=task_id)
    expect(outcome.filter(has_text="Task run succeeded")).to_have_count(1)
    open_section(page, "Audit", "Audit Trail")
    for action in ("Task Create", "Task Run", "Task Pause", "Task Remove"):
        expect(page.locator("main")).to_contain_text(action)

    assert console.problems == []


def reload_until_visible(page: Any, locator: Any, total: int = RUN_WAIT) -> None:
    """A page that shows server state as it was: reload it until ``locator`` shows, within
    ``total`` milliseconds (bounded attempts)."""
    attempts = 10
    for _ in range(attempts - 1):
        try:
            expect(locator.first).to_be_visible(timeout=total // attempts)
            return
        except AssertionError:
            page.reload()
    expect(locator.first).to_be_visible(timeout=total // attempts)


def test_periodic_table_refresh(
    page: Any, console: Console, dashboard_server: DashboardServer
) -> None:
    """The tasks table refreshes itself (htmx, every 15 s): a task added behind the page's back
    shows up without a reload. The page's clock is Playwright's, moved on by hand."""
    log_in(page, dashboard_server)
    page.clock.install()
    page.goto(f"{dashboard_server.dashboard}/tasks/")
    expect(heading(page)).to_have_text("Tasks")
    expect(task_row(page, "Refreshed in")).to_have_count(0)

    # Added without the browser: a plain HTTP client (no Origin, no Sec-Fetch-Site) with the
    # session cookie, as a script of the operator's would.
    added = page.request.post(
        f"{dashboard_server.dashboard}/tasks/create",
        form={
            "name": "Refreshed in",
            "callable_path": GREET_REFERENCE,
            "trigger_type": "interval",
            "trigger_value": "2h",
        },
    )
    assert added.status == 200, added.text()
    expect(task_row(page, "Refreshed in")).to_have_count(0)

    with page.expect_response(re.compile(r"/tasks/partials/table\?")):
        page.clock.run_for("00:16")
    row = task_row(page, "Refreshed in")
    expect(row).to_have_count(1)

    # Clean up through the row's own button (an htmx POST, confirmed).
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Remove", exact=True).click()
    expect(task_row(page, "Refreshed in")).to_have_count(0)
    assert console.problems == []


@pytest.mark.parametrize(
    ("host", "fetch_site"),
    [("127.0.0.1", "same-site"), ("localhost", "cross-site")],
    ids=["other-port", "other-site"],
)
def test_another_origin_cannot_drive_the_dashboard(
    context: Any,
    page: Any,
    dashboard_server: DashboardServer,
    attacker_server: AttackerServer,
    host: str,
    fetch_site: str,
) -> None:
    """A page of another origin, opened in the operator's logged-in browser, sends a form to
    remove a task and one to create a task as soon as it loads. The browser marks both
    (``Sec-Fetch-Site``), and the dashboard refuses them: nothing changes. From another site the
    SameSite session cookie does not even go along.

    Both forms go out in iframes of the attacker's page; the dashboard's answers (403) are also
    kept out of those frames by its frame-ancestors policy."""
    dashboard = dashboard_server.dashboard
    log_in(page, dashboard_server)
    assert page.request.get(f"{dashboard}/tasks/greet-ops").status == 200
    tasks_before = task_names(page, dashboard)

    attack = context.new_page()  # same browser context: the operator's session
    url = attacker_server.url(
        host,
        dashboard=dashboard,
        task="greet-ops",
        name="Planted by another site",
        callable_path=GREET_REFERENCE,
    )
    with (
        attack.expect_response(re.compile(r"/tasks/greet-ops/remove$")) as removal,
        attack.expect_response(re.compile(r"/tasks/create$")) as creation,
    ):
        attack.goto(url)
    assert removal.value.status == 403
    assert creation.value.status == 403
    for request in (removal.value.request, creation.value.request):
        headers = request.all_headers()
        assert headers.get("sec-fetch-site") == fetch_site, headers
        # Another port of the same host is the same site: the session cookie goes along, and
        # Sec-Fetch-Site alone stops the request. From another site SameSite=Lax keeps it back.
        sends_cookie = "asyncz_admin=" in headers.get("cookie", "")
        assert sends_cookie is (fetch_site == "same-site"), headers
    attack.close()

    # Nothing changed: the task is there, nothing was planted, nothing reached the audit trail.
    assert page.request.get(f"{dashboard}/tasks/greet-ops").status == 200
    assert task_names(page, dashboard) == tasks_before
    page.goto(f"{dashboard}/audit/")
    expect(heading(page)).to_have_text("Audit Trail")
    expect(page.locator("main")).not_to_contain_text("Planted by another site")
    expect(page.locator("main")).not_to_contain_text("greet-ops")


def task_names(page: Any, dashboard: str) -> list[str]:
    """The names in the tasks table, read with the operator's session."""
    response = page.request.get(f"{dashboard}/tasks/partials/table?per_page=100")
    assert response.status == 200
    return sorted(re.findall(r'class="az-task-name"[^>]*>([^<]*)</a>', response.text()))
