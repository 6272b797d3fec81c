"""The remote scheduler control: the worker's JSON app and the dashboard's client.

Most tests drive the app in-process through a small ASGI transport (no extra dependency); the
same client is also run over Lilya's TestClient (as Asyncz's tests do) and, with its default
urllib transport, against a real uvicorn server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.server
import json
import logging
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import urlencode

import attrs
import pytest

pytest.importorskip("lilya")

from lilya.apps import Lilya
from lilya.routing import Include

from asyncz.contrib.dashboard.callables import CallableNotAllowed
from asyncz.contrib.dashboard.remote import (
    DEFAULT_MAX_BODY_BYTES,
    RemoteCallableNotAllowed,
    RemoteLookupError,
    RemoteRequestError,
    RemoteSchedulerClient,
    RemoteSchedulerError,
    RemoteTask,
    UrllibTransport,
    create_remote_scheduler_app,
    from_wire,
    to_wire,
)
from asyncz.core.runs import RunRecord
from asyncz.core.scheduler_common import SchedulerInfo, SchedulerInstanceInfo, SchedulerState
from asyncz.core.task import TaskInfo, TaskRunPreview, TaskScheduleState
from asyncz.exceptions import (
    ConflictIdError,
    SchedulerNotRunningError,
    TaskLookupError,
)
from asyncz.schedulers.asyncio import AsyncIOScheduler

PREFIX = "/asyncz-remote"
TOKEN = "s3cret-remote-token"
NOOP = f"{__name__}:noop"
Transport = Callable[..., tuple[int, dict[str, Any]]]


def noop(*args: Any, **kwargs: Any) -> None:
    """The task every test schedules (application code for the default callable policy)."""


# -- a pickle that tells when it is unpickled ------------------------------------------------

UNPICKLED: list[str] = []


def _record_unpickling(marker: str) -> None:
    UNPICKLED.append(marker)


class _Canary:
    def __reduce__(self) -> tuple[Any, ...]:
        return (_record_unpickling, ("unpickled",))


PICKLED = pickle.dumps({"callable": NOOP, "trigger": "interval", "canary": _Canary()})
PICKLED_B64 = base64.b64encode(PICKLED).decode("ascii")


def test_the_canary_would_tell() -> None:
    pickle.loads(PICKLED)  # our own bytes: proves the canary would tell
    assert UNPICKLED == ["unpickled"]
    UNPICKLED.clear()


# -- in-process ASGI requests ----------------------------------------------------------------


def asgi_request(
    app: Any,
    method: str,
    path: str,
    *,
    body: bytes | list[bytes] = b"",
    headers: dict[str, str] | None = None,
    query: str = "",
) -> tuple[int, dict[str, str], bytes]:
    """One request to ``app``; ``body`` as a list is sent in chunks without a length."""
    chunks = body if isinstance(body, list) else [body]
    sent = [(b"host", b"worker")]
    if not isinstance(body, list):
        sent.append((b"content-length", str(len(body)).encode()))
    for name, value in (headers or {}).items():
        sent.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": sent,
        "client": ("127.0.0.1", 50000),
        "server": ("worker", 80),
    }
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    status = 0
    out_headers: dict[str, str] = {}
    out_body = bytearray()

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for key, value in message.get("headers") or []:
                out_headers[key.decode("latin-1").lower()] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            out_body.extend(message.get("body", b""))

    asyncio.run(app(scope, receive, send))
    return status, out_headers, bytes(out_body)


class ASGITransport:
    """The client's transport over :func:`asgi_request`; counts its calls."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls = 0

    def __call__(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None,
        headers: dict[str, str],
        query: dict[str, Any] | None,
    ) -> tuple[int, dict[str, Any]]:
        self.calls += 1
        sent = dict(headers)
        body = b""
        if payload is not None:
            body = json.dumps(payload).encode()
            sent["content-type"] = "application/json"
        status, _, raw = asgi_request(
            self.app, method, PREFIX + path, body=body, headers=sent, query=urlencode(query or {})
        )
        return status, json.loads(raw)


def mounted(app: Any) -> Lilya:
    return Lilya(routes=[Include(PREFIX, app=app)])


def authorized(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKEN}", **(extra or {})}


@pytest.fixture
def worker() -> Iterator[AsyncIOScheduler]:
    scheduler = AsyncIOScheduler(identity="remote-worker")
    scheduler.start()
    try:
        yield scheduler
    finally:
        scheduler.shutdown()


@pytest.fixture
def worker_app(worker: AsyncIOScheduler) -> Lilya:
    return mounted(create_remote_scheduler_app(worker, token=TOKEN))


@pytest.fixture
def transport(worker_app: Lilya) -> ASGITransport:
    return ASGITransport(worker_app)


@pytest.fixture
def remote(transport: ASGITransport) -> RemoteSchedulerClient:
    return RemoteSchedulerClient(token=TOKEN, transport=transport)


def task_ids(scheduler: AsyncIOScheduler) -> list[str]:
    return sorted(info.id for info in scheduler.get_task_infos())


# -- the JSON form ---------------------------------------------------------------------------


def test_every_snapshot_class_round_trips(worker: AsyncIOScheduler) -> None:
    east = timezone(timedelta(hours=5, minutes=30))
    worker.add_task(NOOP, "interval", minutes=7, id="wire", name="wire <b>", max_instances=3)
    worker.add_task(NOOP, "interval", minutes=7, id="paused", next_run_time=None)
    info = worker.get_task_info("wire")
    assert info is not None
    preview = worker.preview_task_runs("wire", count=3, now=datetime(2030, 1, 1, tzinfo=east))
    record = RunRecord(
        task_id="wire",
        scheduled_at=datetime(2030, 1, 1, 12, tzinfo=timezone.utc),
        status="failed",
        instance="remote-worker",
        fired_at=datetime(2030, 1, 1, 17, 30, 1, 250, tzinfo=east),
        run_id="run-1",
        started_at=datetime(2030, 1, 1, 12, 0, 2, tzinfo=timezone.utc),
        finished_at=datetime(2030, 1, 1, 12, 0, 3, tzinfo=timezone.utc),
        duration=1.5,
        error="Traceback ...\nValueError: <script>",
        attempt=2,
        on_crash="rerun",
    )
    samples = [
        info,
        worker.get_task_info("paused"),
        preview,
        worker.get_scheduler_info(),
        *worker.get_scheduler_instance_infos(),
        record,
    ]
    for sample in samples:
        wire = to_wire(sample)
        text = json.dumps(wire, allow_nan=False)  # plain JSON, nothing else
        back = from_wire(type(sample), json.loads(text))
        assert back == sample
        assert type(back) is type(sample)
    scheduler_info = from_wire(SchedulerInfo, to_wire(worker.get_scheduler_info()))
    assert scheduler_info.state is SchedulerState.RUNNING
    assert isinstance(scheduler_info.store_aliases, tuple)
    decoded = from_wire(TaskInfo, to_wire(info))
    assert decoded.schedule_state is TaskScheduleState.SCHEDULED
    assert to_wire(info)["schedule_state"] == "scheduled"
    assert to_wire(worker.get_scheduler_info())["state"] == 1
    assert to_wire(record)["fired_at"] == "2030-01-01T17:30:01.000250+05:30"


def test_from_wire_refuses_values_that_do_not_fit(worker: AsyncIOScheduler) -> None:
    worker.add_task(NOOP, "interval", minutes=7, id="wire")
    data = to_wire(worker.get_task_info("wire"))
    assert from_wire(TaskInfo, {**data, "unknown_new_field": 1}) == worker.get_task_info("wire")
    for field, value in [
        ("schedule_state", "bogus"),
        ("next_run_time", "not a time"),
        ("max_instances", "3"),
        ("coalesce", 1),
        ("id", None),
    ]:
        with pytest.raises(ValueError, match=f"TaskInfo.{field}"):
            from_wire(TaskInfo, {**data, field: value})
    missing = dict(data)
    del missing["executor"]
    with pytest.raises(ValueError, match="'executor' is missing"):
        from_wire(TaskInfo, missing)
    with pytest.raises(ValueError, match="JSON object"):
        from_wire(TaskInfo, [data])
    with pytest.raises(TypeError):
        to_wire({"not": "attrs"})


# -- the client against the worker -----------------------------------------------------------


def test_the_client_manages_tasks_on_the_worker(
    worker: AsyncIOScheduler, remote: RemoteSchedulerClient
) -> None:
    task = remote.add_task(
        NOOP,
        trigger="interval",
        seconds=60,
        id="remote-direct",
        name="remote direct",
        args=["payload", 2],
        kwargs={"source": "remote", "nested": {"a": [1, 2.5, None, True]}},
        max_instances=2,
        coalesce=False,
        mistrigger_grace_time=None,
        replace_existing=True,
    )
    assert isinstance(task, RemoteTask)
    assert isinstance(task, TaskInfo)
    assert task.id == "remote-direct"
    assert task.args == ("payload", 2)
    assert task.kwargs == {"source": "remote", "nested": {"a": [1, 2.5, None, True]}}
    local = worker.get_task("remote-direct")
    assert local is not None
    assert local.fn is noop
    assert local.args == ("payload", 2)
    assert (local.max_instances, local.coalesce, local.mistrigger_grace_time) == (2, False, None)
    assert task.info == worker.get_task_info("remote-direct")

    # Reads give exactly what the local scheduler gives.
    assert remote.get_task_info("remote-direct") == worker.get_task_info("remote-direct")
    assert remote.get_task_infos() == worker.get_task_infos()
    assert remote.get_task_infos(q="direct", sort_by="name", descending=True) == (
        worker.get_task_infos(q="direct", sort_by="name", descending=True)
    )
    assert remote.get_task_infos(schedule_state="paused") == []
    now = datetime(2031, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    preview = remote.preview_task_runs("remote-direct", count=3, now=now)
    assert preview == worker.preview_task_runs("remote-direct", count=3, now=now)
    assert isinstance(preview, TaskRunPreview)
    assert preview.requested_count == 3
    assert len(preview.run_times) == 3

    paused = remote.pause_task("remote-direct")
    assert paused.paused is True
    info = worker.get_task_info("remote-direct")
    assert info is not None
    assert info.paused is True
    resumed = remote.resume_task("remote-direct")
    assert resumed is not None
    assert resumed.paused is False
    info = worker.get_task_info("remote-direct")
    assert info is not None
    assert info.paused is False

    updated = remote.update_task("remote-direct", name="renamed", max_instances=4, args=[1])
    assert (updated.name, updated.max_instances, updated.args) == ("renamed", 4, (1,))
    local = worker.get_task("remote-direct")
    assert local is not None
    assert (local.name, local.max_instances, local.args) == ("renamed", 4, (1,))

    rescheduled = remote.reschedule_task("remote-direct", None, "interval", minutes=5)
    assert rescheduled.trigger_alias == "interval"
    local = worker.get_task("remote-direct")
    assert local is not None
    assert local.trigger is not None
    assert local.trigger.interval == timedelta(minutes=5)  # type: ignore[attr-defined]

    ran = remote.run_task("remote-direct", remove_finished=False)
    assert ran is not None
    assert ran.id == "remote-direct"

    remote.delete_task("remote-direct")
    assert worker.get_task_info("remote-direct") is None
    assert remote.get_task_info("remote-direct") is None
    assert remote.preview_task_runs("remote-direct") is None


def test_scheduler_and_instance_infos(
    worker: AsyncIOScheduler, remote: RemoteSchedulerClient
) -> None:
    remote.add_task(NOOP, "interval", hours=1, id="one")
    remote_info = remote.get_scheduler_info()
    local_info = worker.get_scheduler_info()
    assert attrs.evolve(remote_info, uptime_seconds=None) == attrs.evolve(
        local_info, uptime_seconds=None
    )
    assert remote_info.task_count == 1
    assert remote.identity == "remote-worker"
    instances = remote.get_scheduler_instance_infos()
    assert isinstance(instances, tuple)
    assert isinstance(instances[0], SchedulerInstanceInfo)
    assert instances[0].identity == "remote-worker"
    assert instances[0].scope == "process-local"


def test_run_records_cross_the_wire(
    worker: AsyncIOScheduler, remote: RemoteSchedulerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = RunRecord(
        task_id="t/1",
        scheduled_at=datetime(2030, 1, 1, tzinfo=timezone.utc),
        status="succeeded",
        instance="remote-worker",
        duration=0.25,
    )
    asked: list[tuple[Any, ...]] = []

    def get_task_runs(
        task_id: str | None = None, store: str | None = None, limit: int = 50
    ) -> list[RunRecord]:
        asked.append((task_id, store, limit))
        return [record]

    monkeypatch.setattr(worker, "get_task_runs", get_task_runs)
    assert remote.get_task_runs("t/1", limit=7) == [record]
    assert remote.get_task_runs() == [record]
    assert asked == [("t/1", None, 7), (None, None, 50)]


def test_any_task_id_works(worker: AsyncIOScheduler, remote: RemoteSchedulerClient) -> None:
    odd = "a/b?c=d&e#f %2F é <x>"
    remote.add_task(NOOP, "interval", hours=1, id=odd)
    assert task_ids(worker) == [odd]
    info = remote.get_task_info(odd)
    assert info is not None
    assert info.id == odd
    remote.pause_task(odd)
    remote.delete_task(odd)
    assert task_ids(worker) == []


def test_trigger_arguments_and_times_are_sent_as_json(
    worker: AsyncIOScheduler, remote: RemoteSchedulerClient
) -> None:
    at = datetime(2040, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-3)))
    remote.add_task(noop, "date", run_at=at, id="dated")  # a callable goes as its reference
    local = worker.get_task("dated")
    assert local is not None
    assert local.next_run_time == at
    remote.add_task(NOOP, "interval", hours=1, id="paused", next_run_time=None)
    info = worker.get_task_info("paused")
    assert info is not None
    assert info.paused is True
    remote.add_task(NOOP, "interval", hours=1, id="later", next_run_time=at)
    later = worker.get_task("later")
    assert later is not None
    assert later.next_run_time == at
    moved = remote.update_task("later", next_run_time=at + timedelta(days=1))
    assert moved.next_run_time == at + timedelta(days=1)


def test_a_task_without_a_trigger_runs_once(
    worker: AsyncIOScheduler, remote: RemoteSchedulerClient
) -> None:
    task = remote.add_task(NOOP, id="once", next_run_time=None)
    assert task.trigger_alias == "date"


def test_errors_are_the_local_ones(worker: AsyncIOScheduler, remote: RemoteSchedulerClient) -> None:
    calls: tuple[Callable[[], object], ...] = (
        lambda: remote.pause_task("missing"),
        lambda: remote.resume_task("missing"),
        lambda: remote.run_task("missing"),
        lambda: remote.update_task("missing", name="x"),
        lambda: remote.reschedule_task("missing", None, "interval", seconds=5),
        lambda: remote.delete_task("missing"),
    )
    for call in calls:
        with pytest.raises(TaskLookupError) as caught:
            call()
        assert caught.value.task_id == "missing"
        assert isinstance(caught.value.__cause__, RemoteSchedulerError)
        assert caught.value.__cause__.status == 404
    assert remote.get_task_info("missing") is None
    assert remote.get_task_info("missing", store="no-such-store") is None
    assert remote.preview_task_runs("missing") is None

    remote.add_task(NOOP, "interval", hours=1, id="taken")
    with pytest.raises(ConflictIdError):
        remote.add_task(NOOP, "interval", hours=1, id="taken")
    remote.add_task(NOOP, "interval", hours=2, id="taken", replace_existing=True)

    with pytest.raises(RemoteRequestError, match="secnds") as invalid:
        remote.add_task(NOOP, "interval", secnds=5, id="typo")
    assert isinstance(invalid.value, ValueError)
    assert invalid.value.status == 400
    with pytest.raises(RemoteRequestError, match="no-such-trigger"):
        remote.add_task(NOOP, "no-such-trigger", id="typo")
    with pytest.raises(RemoteRequestError, match="trigger_args may not contain"):
        remote.add_task(NOOP, "interval", hours=1, fn="x")
    with pytest.raises(ValueError, match="count"):
        remote.preview_task_runs("taken", count=0)
    with pytest.raises(ValueError, match="sort_by"):
        remote.get_task_infos(sort_by="bogus")
    with pytest.raises(ValueError, match="max_instances"):
        remote.update_task("taken", max_instances=0)
    with pytest.raises(ValueError, match=r"unknown field\(s\) 'colour'"):
        remote.update_task("taken", colour="red")
    with pytest.raises(RemoteLookupError, match="no-such-store") as lookup:
        remote.get_task_infos(store="no-such-store")
    assert isinstance(lookup.value, KeyError)
    assert task_ids(worker) == ["taken"]


def test_the_client_checks_what_it_cannot_send(
    remote: RemoteSchedulerClient, transport: ASGITransport
) -> None:
    from asyncz.core.task import Task
    from asyncz.triggers import IntervalTrigger

    with pytest.raises(TypeError, match="trigger alias"):
        remote.add_task(NOOP, IntervalTrigger(seconds=5))
    with pytest.raises(TypeError, match="Task object"):
        remote.add_task(Task(noop, trigger=IntervalTrigger(seconds=5)))
    with pytest.raises(TypeError, match="JSON values"):
        remote.add_task(NOOP, "interval", seconds=5, args=[object()])
    with pytest.raises(TypeError, match="JSON values"):
        remote.add_task(NOOP, "interval", seconds=5, kwargs={"when": datetime.now()})
    with pytest.raises(TypeError, match="reschedule_task"):
        remote.update_task("x", trigger="interval")
    with pytest.raises(ValueError, match="lambda"):
        remote.add_task(lambda: None, "interval", seconds=5)
    with pytest.raises(TypeError, match="no decorator form"):
        remote.add_task(None, "interval", seconds=5)
    assert transport.calls == 0


def test_a_stopped_worker_reports_it(transport: ASGITransport) -> None:
    stopped = AsyncIOScheduler()
    client = RemoteSchedulerClient(
        transport=ASGITransport(mounted(create_remote_scheduler_app(stopped)))
    )
    pending = client.add_task(NOOP, "interval", hours=1, id="pending")
    assert pending.schedule_state == "pending"
    with pytest.raises(SchedulerNotRunningError):
        client.run_task("pending")


def test_listeners_are_local_only(remote: RemoteSchedulerClient) -> None:
    remote.add_listener(print, 1)
    assert remote.remove_listener(print) is False


def test_a_failure_inside_the_worker_does_not_leak(
    worker: AsyncIOScheduler,
    remote: RemoteSchedulerClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> None:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(worker, "get_scheduler_info", broken)
    with (
        caplog.at_level(logging.ERROR, "asyncz.contrib.dashboard.remote"),
        pytest.raises(RemoteSchedulerError) as caught,
    ):
        remote.get_scheduler_info()
    assert caught.value.status == 500
    assert "hunter2" not in str(caught.value)
    assert "hunter2" in caplog.text  # the worker's log has it


# -- security --------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token", TOKEN.upper(), TOKEN + "x", TOKEN[:-1]])
def test_requests_without_the_token_are_refused(
    worker: AsyncIOScheduler, worker_app: Lilya, token: str | None
) -> None:
    worker.add_task(NOOP, "interval", hours=1, id="kept")
    client = RemoteSchedulerClient(token=token, transport=ASGITransport(worker_app))
    for call in (
        client.get_scheduler_info,
        client.get_task_infos,
        lambda: client.get_task_info("kept"),
        lambda: client.add_task(NOOP, "interval", hours=1, id="intruder"),
        lambda: client.pause_task("kept"),
        lambda: client.delete_task("kept"),
    ):
        with pytest.raises(RemoteSchedulerError) as caught:
            call()
        assert caught.value.status == 401
        assert caught.value.kind == "unauthorized"
    assert task_ids(worker) == ["kept"]
    info = worker.get_task_info("kept")
    assert info is not None
    assert info.paused is False


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", f"Basic {TOKEN}", f"Token {TOKEN}", f"Bearer {TOKEN} extra", "Bearer é"],
)
def test_the_authorization_header_must_be_exact(worker_app: Lilya, header: str | None) -> None:
    headers = {} if header is None else {"authorization": header}
    status, out, body = asgi_request(worker_app, "GET", f"{PREFIX}/scheduler", headers=headers)
    assert status == 401
    assert out["www-authenticate"] == "Bearer"
    assert json.loads(body)["error"]["kind"] == "unauthorized"
    status, _, _ = asgi_request(
        worker_app, "GET", f"{PREFIX}/scheduler", headers={"authorization": f"bearer {TOKEN}"}
    )
    assert status == 200


@pytest.mark.parametrize(
    "content_type", ["application/octet-stream", "application/python-pickle", "application/json"]
)
def test_a_pickled_body_is_never_unpickled(
    worker: AsyncIOScheduler, worker_app: Lilya, content_type: str
) -> None:
    status, _, body = asgi_request(
        worker_app,
        "POST",
        f"{PREFIX}/tasks",
        body=PICKLED,
        headers=authorized({"content-type": content_type}),
    )
    assert status in (400, 415)
    assert "error" in json.loads(body)
    assert UNPICKLED == []
    assert task_ids(worker) == []


@pytest.mark.parametrize(
    "payload",
    [
        {"callable": PICKLED_B64, "trigger": "interval", "trigger_args": {"hours": 1}},
        {"callable": NOOP, "trigger": PICKLED_B64},
        {"callable": NOOP, "trigger": "interval", "trigger_args": {"hours": PICKLED_B64}},
        {
            "callable": NOOP,
            "trigger": "interval",
            "trigger_args": {"hours": 1},
            "task": PICKLED_B64,
        },
        {"callable": NOOP, "trigger": "interval", "trigger_args": PICKLED_B64},
        {"callable": {"py/reduce": PICKLED_B64}, "trigger": "interval"},
    ],
)
def test_a_pickle_inside_a_field_is_refused(
    worker: AsyncIOScheduler, worker_app: Lilya, payload: dict[str, Any]
) -> None:
    status, _, body = asgi_request(
        worker_app,
        "POST",
        f"{PREFIX}/tasks",
        body=json.dumps(payload).encode(),
        headers=authorized({"content-type": "application/json"}),
    )
    assert status in (400, 403), body
    assert "error" in json.loads(body)
    assert UNPICKLED == []
    assert task_ids(worker) == []


@pytest.mark.parametrize(
    "reference", ["os:system", "subprocess:run", "builtins:eval", "pickle:loads"]
)
def test_dangerous_callables_are_refused(
    worker: AsyncIOScheduler, remote: RemoteSchedulerClient, reference: str
) -> None:
    with pytest.raises(RemoteCallableNotAllowed, match="not application code") as caught:
        remote.add_task(reference, "interval", hours=1, args=["echo owned"], id="evil")
    assert isinstance(caught.value, CallableNotAllowed)
    assert isinstance(caught.value, ValueError)
    assert caught.value.status == 403
    assert task_ids(worker) == []
    remote.add_task(NOOP, "interval", hours=1, id="fine")
    with pytest.raises(RemoteCallableNotAllowed):
        remote.update_task("fine", fn=reference)
    local = worker.get_task("fine")
    assert local is not None
    assert local.fn is noop


def test_the_worker_applies_its_own_allow_list(worker: AsyncIOScheduler) -> None:
    app = create_remote_scheduler_app(
        worker, token=TOKEN, allowed_callables=["tests.fixtures_that_do_not_exist:*"]
    )
    client = RemoteSchedulerClient(token=TOKEN, transport=ASGITransport(mounted(app)))
    with pytest.raises(RemoteCallableNotAllowed, match="matches no allowed pattern"):
        client.add_task(NOOP, "interval", hours=1)
    with pytest.raises(RemoteRequestError, match="cannot be imported"):
        client.add_task("tests.fixtures_that_do_not_exist:f", "interval", hours=1)
    assert task_ids(worker) == []


def test_a_script_tag_is_plain_data(
    worker: AsyncIOScheduler, remote: RemoteSchedulerClient
) -> None:
    name = "<script>alert('x')</script>"
    task = remote.add_task(NOOP, "interval", hours=1, id="xss", name=name, kwargs={"html": name})
    assert task.name == name
    assert task.kwargs == {"html": name}
    info = worker.get_task_info("xss")
    assert info is not None
    assert info.name == name
    remote_info = remote.get_task_info("xss")
    assert remote_info is not None
    assert remote_info.name == name
    status, headers, body = asgi_request(
        remote.transport.app,  # type: ignore[attr-defined]
        "GET",
        f"{PREFIX}/task",
        headers=authorized(),
        query=urlencode({"id": "xss"}),
    )
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert json.loads(body)["data"]["name"] == name


def test_bodies_are_bounded_json_objects(worker: AsyncIOScheduler) -> None:
    app = mounted(create_remote_scheduler_app(worker, token=TOKEN, max_body_bytes=1024))
    big = json.dumps({"callable": NOOP, "name": "x" * 2000}).encode()
    json_headers = authorized({"content-type": "application/json"})
    status, _, body = asgi_request(app, "POST", f"{PREFIX}/tasks", body=big, headers=json_headers)
    assert status == 413
    assert json.loads(body)["error"]["kind"] == "too_large"
    chunked = [big[:600], big[600:1200], big[1200:]]  # no length given: counted as it comes
    status, _, _ = asgi_request(app, "POST", f"{PREFIX}/tasks", body=chunked, headers=json_headers)
    assert status == 413
    for raw in (b"[1, 2]", b'"text"', b"null", b"{bad json", b'{"a": NaN}', b"\xff\xfe"):
        status, _, body = asgi_request(
            app, "POST", f"{PREFIX}/tasks", body=raw, headers=json_headers
        )
        assert status == 400, raw
        assert json.loads(body)["error"]["kind"] == "invalid"
    deep = b"[" * 100_000 + b"]" * 100_000
    status, _, _ = asgi_request(
        mounted(create_remote_scheduler_app(worker, token=TOKEN)),
        "POST",
        f"{PREFIX}/tasks",
        body=deep,
        headers=json_headers,
    )
    assert status in (400, 413)
    assert task_ids(worker) == []
    assert DEFAULT_MAX_BODY_BYTES == 1 << 20


def test_unknown_routes_fields_and_parameters_answer_json(worker_app: Lilya) -> None:
    for method, path, query, code in [
        ("GET", "/nowhere", "", 404),
        ("DELETE", "/tasks", "", 405),
        ("GET", "/tasks", "colour=red", 400),
        ("GET", "/task", "id=a&id=b", 400),
        ("GET", "/task/preview", "id=a&count=many", 400),
        ("GET", "/runs", "limit=lots", 400),
    ]:
        status, headers, body = asgi_request(
            worker_app, method, PREFIX + path, headers=authorized(), query=query
        )
        assert status == code, (path, query)
        assert headers["content-type"].startswith("application/json")
        assert "message" in json.loads(body)["error"]
    status, _, body = asgi_request(
        worker_app,
        "POST",
        f"{PREFIX}/task/pause",
        body=b'{"id": "x", "force": true}',
        headers=authorized({"content-type": "application/json"}),
    )
    assert status == 400
    assert "unknown field(s) 'force'" in json.loads(body)["error"]["message"]


def test_without_a_token_the_app_works_and_warns_once(
    worker: AsyncIOScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "asyncz.contrib.dashboard.remote"):
        app = mounted(create_remote_scheduler_app(worker))
        client = RemoteSchedulerClient(transport=ASGITransport(app))
        client.add_task(NOOP, "interval", hours=1, id="open")
        assert client.get_scheduler_info().task_count == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "without a token" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("token", "error"), [("", ValueError), ("two words", ValueError), (123, TypeError)]
)
def test_tokens_must_be_usable(worker: AsyncIOScheduler, token: Any, error: type) -> None:
    with pytest.raises(error):
        create_remote_scheduler_app(worker, token=token)
    with pytest.raises(error):
        RemoteSchedulerClient("http://worker:8000/asyncz-remote", token=token)


def test_max_body_bytes_must_be_positive(worker: AsyncIOScheduler) -> None:
    with pytest.raises(ValueError, match="max_body_bytes"):
        create_remote_scheduler_app(worker, token=TOKEN, max_body_bytes=0)


# -- the default transport -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "",
        "worker:8000",
        "ftp://worker/asyncz-remote",
        "file:///etc/passwd",
        "http://user:pw@worker/asyncz-remote",
        "http://worker/asyncz-remote?x=1",
        "http://worker/asyncz-remote#frag",
        "http:///asyncz-remote",
    ],
)
def test_base_url_must_be_plain_http(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        RemoteSchedulerClient(url, token=TOKEN)


def test_a_client_needs_a_url_or_a_transport() -> None:
    with pytest.raises(ValueError, match="base_url"):
        RemoteSchedulerClient(token=TOKEN)
    with pytest.raises(ValueError, match="timeout"):
        UrllibTransport("http://worker/asyncz-remote", timeout=0)
    assert "s3cret" not in repr(RemoteSchedulerClient("http://worker:1/r", token=TOKEN))


@contextlib.contextmanager
def uvicorn_server(app: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    uvicorn = pytest.importorskip("uvicorn")
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20  # a bound on waiting, not a timing assertion
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


def test_the_default_transport_against_a_real_server(worker: AsyncIOScheduler) -> None:
    app = mounted(create_remote_scheduler_app(worker, token=TOKEN))
    with uvicorn_server(app) as root:
        remote = RemoteSchedulerClient(f"{root}{PREFIX}/", token=TOKEN, timeout=10)
        task = remote.add_task(
            NOOP, "interval", seconds=60, id="over/http", name="<b>http</b>", args=["a"]
        )
        assert task.args == ("a",)
        assert remote.get_task_info("over/http") == worker.get_task_info("over/http")
        assert remote.get_task_infos() == worker.get_task_infos()
        assert remote.pause_task("over/http").paused is True
        assert remote.identity == "remote-worker"
        with pytest.raises(TaskLookupError):
            remote.pause_task("missing")
        with pytest.raises(RemoteCallableNotAllowed):
            remote.add_task("os:system", "interval", seconds=60, args=["true"])
        remote.delete_task("over/http")
        assert task_ids(worker) == []

        intruder = RemoteSchedulerClient(f"{root}{PREFIX}", token="wrong-token")
        with pytest.raises(RemoteSchedulerError) as caught:
            intruder.add_task(NOOP, "interval", seconds=60, id="intruder")
        assert caught.value.status == 401
        anonymous = RemoteSchedulerClient(f"{root}{PREFIX}")
        with pytest.raises(RemoteSchedulerError):
            anonymous.get_scheduler_info()
        assert task_ids(worker) == []

        with pytest.raises(RemoteSchedulerError, match="without JSON"):
            RemoteSchedulerClient(f"{root}/not-mounted-here", token=TOKEN).get_scheduler_info()


def test_the_default_transport_reports_an_unreachable_worker() -> None:
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    remote = RemoteSchedulerClient(f"http://127.0.0.1:{port}{PREFIX}", token=TOKEN, timeout=5)
    with pytest.raises(RemoteSchedulerError, match="cannot reach") as caught:
        remote.get_scheduler_info()
    assert caught.value.status is None


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/redirect"):
            self.send_response(307)
            self.send_header("Location", "/elsewhere/scheduler")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"<html>not the control app</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_redirects_are_not_followed() -> None:
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        root = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(RemoteSchedulerError) as caught:
            RemoteSchedulerClient(f"{root}/redirect", token=TOKEN).get_scheduler_info()
        assert caught.value.status == 307
        assert _Recorder.seen == [("/redirect/scheduler", f"Bearer {TOKEN}")]
        with pytest.raises(RemoteSchedulerError, match="without JSON"):
            RemoteSchedulerClient(f"{root}/html", token=TOKEN).get_scheduler_info()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# -- Lilya's TestClient, as Asyncz's own tests drive the client -------------------------------


def _lilya_test_client() -> Any:
    try:
        from lilya.testclient import TestClient
    except (ImportError, RuntimeError) as exc:  # RuntimeError: lilya asks for its HTTP client
        pytest.skip(f"lilya.testclient is not usable here: {exc}")
    return TestClient


def test_over_lilya_test_client(worker: AsyncIOScheduler) -> None:
    test_client = _lilya_test_client()
    app = mounted(create_remote_scheduler_app(worker, token=TOKEN))
    with test_client(app) as http_client:

        def transport(
            method: str,
            path: str,
            payload: dict[str, Any] | None,
            headers: dict[str, str],
            query: dict[str, Any] | None,
        ) -> tuple[int, dict[str, Any]]:
            response = http_client.request(
                method, f"{PREFIX}{path}", json=payload, headers=headers, params=query or {}
            )
            return response.status_code, response.json()

        remote = RemoteSchedulerClient(token=TOKEN, transport=transport)
        task = remote.add_task(NOOP, trigger="interval", seconds=60, id="tc", args=["payload"])
        assert task.args == ("payload",)
        assert remote.preview_task_runs("tc", count=2) is not None
        assert remote.run_task("tc", remove_finished=False) is not None
        remote.delete_task("tc")
        assert worker.get_task_info("tc") is None
        with pytest.raises(RemoteSchedulerError):
            RemoteSchedulerClient(token="wrong", transport=transport).get_scheduler_info()
