"""The dashboard's pages, its mounting in Lilya and Starlette apps, and its response headers."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import datetime, timezone

import pytest

pytest.importorskip("lilya")

from asyncz.contrib.dashboard import AsynczAdmin
from asyncz.core.runs import RunRecord
from tests.contrib.dashboard.conftest import ASGIClient, running_scheduler

UTC = timezone.utc


def noop() -> None:
    return None


def test_tasks_list_shows_each_task() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            scheduler.add_task(noop, "interval", seconds=30, id="every-30s", name="Every half")
            scheduler.add_task(noop, "interval", minutes=5, id="later", name="Later")
            scheduler.pause_task("later")
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            reply = await client.get("/tasks/")
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/html")
            text = reply.text
            assert "every-30s" in text and "Every half" in text
            assert "interval[0:00:30]" in text
            assert "paused" in text and "scheduled" in text
            assert 'href="/dashboard/tasks/every-30s"' in text
            assert (await client.get("/")).status_code == 200

    asyncio.run(scenario())


def test_task_detail_shows_fields_preview_and_runs() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            scheduler.add_task(noop, "interval", seconds=10, id="tick", name="Tick")
            record = RunRecord(
                task_id="tick",
                scheduled_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
                status="failed",
                instance="node-a",
                duration=0.25,
                error="ValueError: <boom>",
            )
            calls: list[tuple[object, int]] = []

            def fake_runs(task_id: str | None = None, store: str | None = None, limit: int = 50):
                calls.append((task_id, limit))
                return [record]

            scheduler.get_task_runs = fake_runs
            client = ASGIClient(AsynczAdmin(scheduler=scheduler, preview_count=3).get_asgi_app())
            reply = await client.get("/tasks/tick")
            assert reply.status_code == 200
            text = reply.text
            assert "Task Detail" in text and "Tick" in text and "tests.contrib" in text
            assert "Upcoming Runs" in text and text.count("<li>") == 3
            assert "Recent Runs" in text and "node-a" in text and "250 ms" in text
            assert "ValueError: &lt;boom&gt;" in text
            assert calls and all(task_id == "tick" for task_id, _ in calls)

    asyncio.run(scenario())


def test_missing_task_is_404() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            reply = await client.get("/tasks/nope")
            assert reply.status_code == 404
            assert "Task not found" in reply.text
            assert reply.headers["x-frame-options"] == "DENY"

    asyncio.run(scenario())


def test_instances_page_lists_this_scheduler() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            reply = await client.get("/instances/")
            assert reply.status_code == 200
            assert "Scheduler Instances" in reply.text
            assert "process-local" in reply.text and "Active" in reply.text
            assert scheduler.identity in reply.text

    asyncio.run(scenario())


def test_every_response_carries_the_security_headers() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            for path in ("/tasks/", "/instances/", "/tasks/missing", "/static/css/asyncz.css"):
                reply = await client.get(path)
                csp = reply.headers["content-security-policy"]
                assert (
                    "script-src 'self'" in csp
                    and "unsafe-inline'; " not in csp.split("script-src")[1].split(";")[0]
                )
                assert "frame-ancestors 'none'" in csp
                assert reply.headers["x-frame-options"] == "DENY"
                assert reply.headers["x-content-type-options"] == "nosniff"

    asyncio.run(scenario())


def test_pages_have_no_inline_scripts_or_external_assets() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            scheduler.add_task(noop, "interval", seconds=10, id="tick")
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            for path in ("/tasks/", "/tasks/tick", "/instances/"):
                text = (await client.get(path)).text.lower()
                # Scripts only as files of the dashboard's own origin; no inline code.
                scripts = re.findall(r"<script([^>]*)>(.*?)</script>", text, re.S)
                assert scripts and all(
                    'src="http://testserver/dashboard/static/' in attrs and not body.strip()
                    for attrs, body in scripts
                )
                assert "onclick=" not in text and " on" + "load=" not in text
                assert "https://" not in text
                assert not re.findall(r"http://(?!testserver/)", text)

    asyncio.run(scenario())


def test_a_script_in_a_task_name_is_shown_as_text() -> None:
    evil = "<script>alert(1)</script>"

    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            scheduler.add_task(noop, "interval", seconds=10, id='x"><b>', name=evil)
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            for path in ("/tasks/", "/tasks/x%22%3E%3Cb%3E"):
                reply = await client.get(path)
                assert reply.status_code == 200, path
                assert evil not in reply.text and "<b>" not in reply.text
                assert html.escape(evil) in reply.text

    asyncio.run(scenario())


def test_static_files_come_from_a_fixed_list() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            css = await client.get("/static/css/asyncz.css")
            assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
            for name in ("../views.py", "..%2Fviews.py", "css/../../views.py", "css", "css/"):
                assert (await client.get(f"/static/{name}")).status_code == 404

    asyncio.run(scenario())


def test_include_in_a_lilya_app_mounts_at_the_prefix() -> None:
    from lilya.apps import Lilya

    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            scheduler.add_task(noop, "interval", seconds=10, id="tick")
            app = Lilya()
            AsynczAdmin(scheduler=scheduler, url_prefix="/ops/asyncz/").include_in(app)
            client = ASGIClient(app)
            reply = await client.get("/ops/asyncz/tasks/")
            assert reply.status_code == 200
            assert 'href="/ops/asyncz/tasks/tick"' in reply.text
            assert (await client.get("/ops/asyncz/tasks/tick")).status_code == 200
            assert (await client.get("/ops/asyncz/instances/")).status_code == 200
            # A section's front page is <name>/: its relative htmx URLs stay inside it.
            moved = await client.get("/ops/asyncz/instances?x=1")
            assert moved.status_code == 307 and moved.headers["location"] == "instances/?x=1"
            assert "tick" in (await client.get("/ops/asyncz/")).text

    asyncio.run(scenario())


def test_include_in_a_starlette_app_mounts_at_the_prefix() -> None:
    starlette_apps = pytest.importorskip("starlette.applications")

    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            scheduler.add_task(noop, "interval", seconds=10, id="tick")
            app = starlette_apps.Starlette()
            AsynczAdmin(scheduler=scheduler).include_in(app)
            client = ASGIClient(app)
            reply = await client.get("/dashboard/tasks/tick")
            assert reply.status_code == 200 and "Task Detail" in reply.text
            assert reply.headers["x-frame-options"] == "DENY"
            for path in ("/dashboard/", "/dashboard/tasks/"):
                reply = await client.get(path)
                assert reply.status_code == 200 and "tick" in reply.text, path
            moved = await client.get("/dashboard/tasks")
            assert moved.status_code == 307 and moved.headers["location"] == "tasks/"

    asyncio.run(scenario())


def test_include_in_refuses_an_unknown_app() -> None:
    admin = AsynczAdmin(scheduler=object())
    with pytest.raises(TypeError, match="cannot mount"):
        admin.include_in(object())


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"scheduler": None}, TypeError),
        ({"scheduler": object(), "preview_count": 0}, ValueError),
        ({"scheduler": object(), "preview_count": True}, TypeError),
        ({"scheduler": object(), "recent_runs": 0}, ValueError),
        ({"scheduler": object(), "url_prefix": 5}, TypeError),
    ],
)
def test_admin_checks_its_settings(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        AsynczAdmin(**kwargs)


def test_a_thousand_tasks_are_all_listed() -> None:
    # No time is asserted (the machine decides that); the pages hold every task once.
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            for i in range(1000):
                scheduler.add_task(noop, "interval", seconds=60 + i, id=f"task-{i:04d}")
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            seen: list[str] = []
            for page in range(1, 6):
                reply = await client.get(f"/tasks/?per_page=200&page={page}")
                assert reply.status_code == 200
                assert f"Page {page} of 5" in reply.text
                seen.extend(re.findall(r'<tr data-jid="([^"]+)"', reply.text))
            assert sorted(seen) == [f"task-{i:04d}" for i in range(1000)]
            last = await client.get("/tasks/?per_page=200&page=99")  # clamped to the last page
            assert "Showing 801-1000 of 1000 matching tasks" in last.text

    asyncio.run(scenario())


def test_links_carry_a_trusted_proxys_prefix_only() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            scheduler.add_task(noop, "interval", seconds=10, id="tick")
            trusting = AsynczAdmin(
                scheduler=scheduler,
                enable_forward_middleware=True,
                trusted_forwarded_hosts="127.0.0.0/8",  # the test client is 127.0.0.1
            )
            client = ASGIClient(trusting.get_asgi_app())
            reply = await client.get("/tasks/", headers={"x-forwarded-prefix": "/ops/"})
            assert 'href="/ops/dashboard/tasks/tick"' in reply.text
            assert "/ops/dashboard/static/css/asyncz.css" in reply.text
            action = await client.post("/tasks/tick/pause", headers={"x-forwarded-prefix": "/ops"})
            assert action.headers["location"] == "/ops/dashboard/tasks/tick?done=pause"

            elsewhere = AsynczAdmin(
                scheduler=scheduler,
                enable_forward_middleware=True,
                trusted_forwarded_hosts=("10.0.0.0/8",),
            )
            client = ASGIClient(elsewhere.get_asgi_app())
            reply = await client.get("/tasks/", headers={"x-forwarded-prefix": "/ops/"})
            assert "/ops/" not in reply.text and 'href="/dashboard/tasks/tick"' in reply.text

            off = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            reply = await off.get("/tasks/", headers={"x-forwarded-prefix": "/ops/"})
            assert "/ops/" not in reply.text

    asyncio.run(scenario())


def test_timeline_lists_the_earliest_runs_of_all_tasks() -> None:
    # The page stops asking for previews once no later task can add a row; what it shows must
    # equal the earliest runs over every task's full preview.
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            for i in range(60):
                # Intervals from 7 s to 900 s: long ones come back late, short ones often.
                scheduler.add_task(noop, "interval", seconds=7 + (i * 97) % 900, id=f"t{i:02d}")
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            reply = await client.get("/timeline/?per_task=4&limit=25")
            shown = re.findall(r'<td><a href="/dashboard/tasks/(t\d\d)">', reply.text)
            expected = []
            for info in scheduler.get_task_infos():
                preview = scheduler.preview_task_runs(info.id, count=4)
                expected.extend((moment, info.id) for moment in preview.run_times)
            expected.sort()
            assert shown == [task_id for _, task_id in expected[:25]]

    asyncio.run(scenario())
