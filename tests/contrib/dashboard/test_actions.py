"""Run, pause, resume and remove from the dashboard; POSTs from another site are refused."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("lilya")

from asyncz.contrib.dashboard import AsynczAdmin
from tests.contrib.dashboard.conftest import ASGIClient, running_scheduler

calls: list[str] = []


def record() -> None:
    calls.append("ran")


def test_pause_resume_run_remove_by_post() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            scheduler.add_task(record, "interval", hours=1, id="job")
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())

            reply = await client.post("/tasks/job/pause", headers={"origin": "http://testserver"})
            assert reply.status_code == 303
            assert reply.headers["location"] == "/dashboard/tasks/job?done=pause"
            assert scheduler.get_task_info("job").schedule_state == "paused"

            reply = await client.post(
                "/tasks/job/resume", headers={"sec-fetch-site": "same-origin"}
            )
            assert reply.status_code == 303
            assert scheduler.get_task_info("job").schedule_state == "scheduled"

            calls.clear()
            reply = await client.post("/tasks/job/run")
            assert reply.status_code == 303
            for _ in range(100):
                if calls:
                    break
                await asyncio.sleep(0.01)
            assert calls == ["ran"]

            page = await client.get("/tasks/job?done=run")
            assert "Done: run" in page.text

            reply = await client.post("/tasks/job/remove")
            assert reply.status_code == 303
            assert reply.headers["location"] == "/dashboard/tasks/?done=remove"
            assert scheduler.get_task("job") is None

    asyncio.run(scenario())


def test_actions_on_unknown_tasks_or_names_are_404() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            scheduler.add_task(record, "interval", hours=1, id="job")
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            assert (await client.post("/tasks/nope/pause")).status_code == 404
            assert (await client.post("/tasks/job/explode")).status_code == 404
            # State changes only by POST.
            assert (await client.get("/tasks/job/remove")).status_code == 405
            assert scheduler.get_task("job") is not None

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        # A browser that sends Sec-Fetch-Site is believed over Origin.
        {"sec-fetch-site": "cross-site", "origin": "http://testserver"},
        {"origin": "https://evil.example"},
        {"origin": "http://testserver.evil.example"},
        {"origin": "http://testserver:8080"},
        {"origin": "null"},
    ],
)
@pytest.mark.parametrize("action", ["run", "pause", "resume", "remove"])
def test_cross_site_posts_are_refused(headers: dict[str, str], action: str) -> None:
    calls.clear()

    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            scheduler.add_task(record, "interval", hours=1, id="job")
            if action == "resume":
                scheduler.pause_task("job")
            before = scheduler.get_task_info("job")
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            reply = await client.post(f"/tasks/job/{action}", headers=headers)
            assert reply.status_code == 403
            assert reply.headers["x-frame-options"] == "DENY"
            await asyncio.sleep(0.05)
            assert scheduler.get_task_info("job") == before
            assert calls == []

    asyncio.run(scenario())


def test_same_origin_with_default_port_is_allowed() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            scheduler.add_task(record, "interval", hours=1, id="job")
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            reply = await client.post(
                "/tasks/job/pause", headers={"origin": "http://TestServer:80"}
            )
            assert reply.status_code == 303
            assert scheduler.get_task_info("job").schedule_state == "paused"

    asyncio.run(scenario())


def test_cross_site_get_is_served() -> None:
    # Reading is harmless (and framing is denied); only state changes are guarded.
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            reply = await client.get("/tasks/", headers={"sec-fetch-site": "cross-site"})
            assert reply.status_code == 200

    asyncio.run(scenario())


def test_a_refused_action_is_a_409_page() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            scheduler.add_task(record, "interval", hours=1, id="job")
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            scheduler.shutdown(wait=False)
            reply = await client.post("/tasks/job/run")
            assert reply.status_code == 409
            assert "Could not run task job" in reply.text
            scheduler.start()

    asyncio.run(scenario())


def test_bulk_actions_work_without_scripts() -> None:
    # A plain form post (ticked rows, no htmx) changes the tasks and goes back to the table.
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            for name in ("a", "b", "c"):
                scheduler.add_task(record, "interval", hours=1, id=name)
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            body = "row=a&row=b&filters=q%3D%26per_page%3D50"
            reply = await client.request(
                "POST",
                "/tasks/hx/bulk/pause",
                headers={"content-type": "application/x-www-form-urlencoded"},
                form=None,
                raw_body=body.encode(),
            )
            assert reply.status_code == 303
            assert reply.headers["location"] == "/dashboard/tasks/?per_page=50&done=pause"
            states = {t.id: t.paused for t in scheduler.get_task_infos()}
            assert states == {"a": True, "b": True, "c": False}

    asyncio.run(scenario())
