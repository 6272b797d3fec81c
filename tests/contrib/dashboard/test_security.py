"""The dashboard refuses what could change the scheduler from outside: other sites' POSTs,
callables outside the application, pickled or other non-JSON payloads, requests without a
login; what it shows is text, never markup. Each refusal leaves the scheduler unchanged."""

from __future__ import annotations

import asyncio
import base64
import pickle
import time
from typing import Any

import pytest

pytest.importorskip("lilya")

from asyncz.contrib.dashboard import AsynczAdmin, SimpleUsernamePasswordBackend, User
from asyncz.contrib.dashboard.admin.auth import SessionSigner
from asyncz.contrib.dashboard.config import DashboardConfig
from tests.contrib.dashboard.conftest import ASGIClient, running_scheduler

EVIL = "<script>alert(1)</script>"


def noop(*args: Any, **kwargs: Any) -> None:
    return None


def snapshot(scheduler: Any) -> list[tuple[Any, ...]]:
    """What a refused request must not change: every task's fields and next run time."""
    task_infos = scheduler.get_task_infos(sort_by="id")
    return [
        (
            t.id,
            t.name,
            t.callable_reference,
            t.trigger_description,
            t.next_run_time,
            t.paused,
            t.executor,
            t.coalesce,
            t.max_instances,
            t.mistrigger_grace_time,
        )
        for t in task_infos
    ]


CREATE = {
    "callable_path": "tests.contrib.dashboard.test_security:noop",
    "name": "created",
    "trigger_type": "interval",
    "trigger_value": "1h",
}


def state_changing_requests() -> list[tuple[str, dict[str, str]]]:
    return [
        ("/tasks/create", CREATE),
        ("/tasks/job/run", {}),
        ("/tasks/job/pause", {}),
        ("/tasks/job/remove", {}),
        ("/tasks/hx/bulk/remove", {"ids": '["job"]'}),
        ("/tasks/job/edit", {"name": "renamed", "intent": "apply"}),
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site", "origin": "http://evil.testserver"},
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"origin": "http://testserver:8080"},
    ],
    ids=["fetch-cross-site", "fetch-same-site", "foreign-origin", "null-origin", "other-port"],
)
def test_posts_from_another_site_change_nothing(headers: dict[str, str]) -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            scheduler.add_task(noop, "interval", hours=1, id="job", name="job")
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            before = snapshot(scheduler)
            for path, form in state_changing_requests():
                reply = await client.post(path, form=form, headers=headers)
                assert reply.status_code == 403, path
                assert reply.headers["x-frame-options"] == "DENY"
            assert snapshot(scheduler) == before

    asyncio.run(scenario())


def test_same_origin_posts_pass() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            for headers in ({"sec-fetch-site": "same-origin"}, {"origin": "http://testserver"}):
                reply = await client.post("/tasks/create", form=CREATE, headers=headers)
                assert reply.status_code == 303  # a plain form post goes back to the table
                assert reply.headers["location"] == "/dashboard/tasks/?per_page=25&done=create"
            assert len(scheduler.get_task_infos()) == 2

    asyncio.run(scenario())


PICKLED = pickle.dumps({"x": 1})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("callable_path", "os:system"),
        ("callable_path", "subprocess:run"),
        ("callable_path", "builtins:eval"),
        ("callable_path", "pickle:loads"),
        ("callable_path", "asyncz.core.task:Task"),
        ("callable_path", "tests.contrib.dashboard.test_security:_private"),
        ("callable_path", "tests.contrib.dashboard.test_security:pickle.loads"),
        ("args", base64.b64encode(PICKLED).decode()),
        ("args", PICKLED.decode("latin-1")),
        ("kwargs", base64.b64encode(PICKLED).decode()),
        ("kwargs", '["not", "an", "object"]'),
        ("trigger_value", PICKLED.decode("latin-1")),
        ("trigger_type", "pickle"),
    ],
)
def test_create_refuses_code_and_pickles(field: str, value: str) -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            reply = await client.post("/tasks/create", form={**CREATE, field: value})
            assert reply.status_code == 400
            assert 'role="alert"' in reply.text
            assert scheduler.get_task_infos() == []
            audit = await client.get("/audit/?action=task.create")
            assert "Error" in audit.text

    asyncio.run(scenario())


def _private() -> None:
    return None


def test_edit_refuses_a_callable_outside_the_application() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            scheduler.add_task(noop, "interval", hours=1, id="job", name="job")
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            before = snapshot(scheduler)
            for form in (
                {"callable_path": "os:system", "args": '["touch /tmp/x"]', "intent": "apply"},
                {"args": base64.b64encode(PICKLED).decode(), "intent": "apply"},
                {"max_instances": "0", "intent": "apply"},
                {"executor": "nope", "intent": "apply"},
            ):
                reply = await client.post("/tasks/job/edit", form=form)
                assert reply.status_code == 400, form
            assert snapshot(scheduler) == before

    asyncio.run(scenario())


def test_allowed_callables_narrow_what_forms_may_name() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            admin = AsynczAdmin(scheduler=scheduler, allowed_callables=["myapp.jobs:*"])
            client = ASGIClient(admin.get_asgi_app())
            reply = await client.post("/tasks/create", form=CREATE)
            assert reply.status_code == 400 and "myapp.jobs:*" in reply.text
            assert scheduler.get_task_infos() == []

    asyncio.run(scenario())


def test_markup_in_names_and_errors_is_shown_as_text() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            client = ASGIClient(AsynczAdmin(scheduler=scheduler).get_asgi_app())
            reply = await client.post(
                "/tasks/create", form={**CREATE, "name": EVIL}, headers={"hx-request": "true"}
            )
            assert reply.status_code == 200
            (task,) = scheduler.get_task_infos()
            assert task.name == EVIL
            bad = await client.post("/tasks/create", form={**CREATE, "trigger_value": EVIL})
            for page in (
                reply,
                bad,
                await client.get("/"),
                await client.get("/tasks/"),
                await client.get(f"/tasks/{task.id}"),
                await client.get(f"/tasks/{task.id}/edit"),
                await client.get("/timeline/"),
                await client.get("/audit/"),
                await client.get("/events/"),
                await client.get(f"/logs/?q={EVIL}"),
            ):
                assert EVIL not in page.text
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (await client.get("/tasks/")).text

    asyncio.run(scenario())


def verify(username: str, password: str) -> User | None:
    return User(id="admin", name="Admin") if (username, password) == ("admin", "secret") else None


def login_admin(scheduler: Any, **config: Any) -> AsynczAdmin:
    return AsynczAdmin(
        scheduler=scheduler,
        enable_login=True,
        backend=SimpleUsernamePasswordBackend(verify),
        config=DashboardConfig(secret_key="k" * 32, **config),
    )


def test_login_is_required_and_the_cookie_is_guarded() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            scheduler.add_task(noop, "interval", hours=1, id="job", name="job")
            admin = login_admin(scheduler)
            client = ASGIClient(admin.get_asgi_app())
            before = snapshot(scheduler)

            page = await client.get("/tasks/")
            assert page.status_code == 303 and page.headers["location"] == "/dashboard/login"
            for path, form in state_changing_requests():
                assert (await client.post(path, form=form)).status_code == 401, path
            assert snapshot(scheduler) == before
            assert (await client.get("/static/css/asyncz.css")).status_code == 200

            wrong = await client.post("/login", form={"username": "admin", "password": "nope"})
            assert wrong.status_code == 401 and "set-cookie" not in wrong.headers

            good = await client.post("/login", form={"username": "admin", "password": "secret"})
            assert good.status_code == 303
            cookie = good.headers["set-cookie"]
            assert cookie.startswith("asyncz_admin=")
            flags = {part.strip().lower() for part in cookie.split(";")}
            assert "httponly" in flags and "samesite=lax" in flags and "path=/dashboard" in flags
            assert "secure" not in flags  # plain HTTP here; see the HTTPS test
            value = cookie.split(";")[0].partition("=")[2]
            session = {"cookie": f"asyncz_admin={value}"}
            assert (await client.get("/tasks/", headers=session)).status_code == 200

            # A changed signature, payload or user is no session.
            payload, _, signature = value.partition(".")
            forged = SessionSigner("another key", 3600).dumps(User(id="admin"))
            for bad in (f"{payload}.{signature[:-2]}xx", f"{payload}x.{signature}", forged, "x"):
                reply = await client.get("/tasks/", headers={"cookie": f"asyncz_admin={bad}"})
                assert reply.status_code == 303, bad

    asyncio.run(scenario())


def test_the_cookie_is_secure_behind_tls_and_expires() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            client = ASGIClient(login_admin(scheduler, max_age=60).get_asgi_app())
            good = await client.post(
                "/login", form={"username": "admin", "password": "secret"}, scheme="https"
            )
            assert "secure" in {p.strip().lower() for p in good.headers["set-cookie"].split(";")}

            signer = SessionSigner("k" * 32, 60)
            old = signer.dumps(User(id="admin"))
            signer_later = SessionSigner("k" * 32, 60)
            assert signer_later.loads(old) is not None
            real_time = time.time
            try:
                time.time = lambda: real_time() + 61  # type: ignore[assignment]
                assert signer_later.loads(old) is None
            finally:
                time.time = real_time  # type: ignore[assignment]

    asyncio.run(scenario())


def test_a_login_post_from_another_site_is_refused() -> None:
    async def scenario() -> None:
        async with running_scheduler() as scheduler:
            client = ASGIClient(login_admin(scheduler).get_asgi_app())
            reply = await client.post(
                "/login",
                form={"username": "admin", "password": "secret"},
                headers={"sec-fetch-site": "cross-site"},
            )
            assert reply.status_code == 403 and "set-cookie" not in reply.headers

    asyncio.run(scenario())
