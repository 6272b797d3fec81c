"""A dependency-free ASGI client for the dashboard tests, and a running scheduler."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import unquote, urlencode

import pytest

pytest.importorskip("lilya")
pytest.importorskip("jinja2")

from asyncz.schedulers.asyncio import AsyncIOScheduler


class Reply:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status_code = status
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
        self.body = body
        self.text = body.decode("utf-8")


class ASGIClient:
    """Sends one HTTP request at a time straight to an ASGI app (no sockets, no httpx)."""

    def __init__(self, app: Callable[..., Any], host: str = "testserver") -> None:
        self.app = app
        self.host = host

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        scheme: str = "http",
        raw_body: bytes | None = None,
    ) -> Reply:
        body = raw_body if raw_body is not None else (urlencode(form).encode() if form else b"")
        raw_path, _, query = path.partition("?")
        sent_headers = [(b"host", self.host.encode())]
        if form is not None:
            sent_headers.append((b"content-type", b"application/x-www-form-urlencoded"))
        sent_headers.append((b"content-length", str(len(body)).encode()))
        for name, value in (headers or {}).items():
            sent_headers.append((name.lower().encode(), value.encode("latin-1")))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": scheme,
            "path": unquote(raw_path),  # as servers do: decoded path, raw_path as sent
            "raw_path": raw_path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": sent_headers,
            "client": ("127.0.0.1", 50000),
            "server": (self.host, 80),
        }
        chunks = [{"type": "http.request", "body": body, "more_body": False}]
        status = 0
        out_headers: list[tuple[bytes, bytes]] = []
        out_body = bytearray()

        async def receive() -> dict[str, Any]:
            if chunks:
                return chunks.pop(0)
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, out_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                out_headers = list(message.get("headers") or [])
            elif message["type"] == "http.response.body":
                out_body.extend(message.get("body", b""))

        await self.app(scope, receive, send)
        return Reply(status, out_headers, bytes(out_body))

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("POST", path, **kwargs)


@contextlib.asynccontextmanager
async def running_scheduler() -> AsyncIterator[AsyncIOScheduler]:
    """A started AsyncIOScheduler on the running loop, shut down afterwards."""
    sched = AsyncIOScheduler()
    sched.start()
    try:
        yield sched
    finally:
        sched.shutdown(wait=False)
