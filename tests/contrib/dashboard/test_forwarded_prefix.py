"""``X-Forwarded-Prefix`` is believed from configured proxies only, and only as a plain path."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("lilya")

from asyncz.contrib.dashboard.admin.middleware.forward_root_path import (
    ForwardedPrefixMiddleware,
)


def seen_scope(trusted: Any, client: tuple[str, int] | None, prefix: bytes) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)

    scope = {"type": "http", "client": client, "headers": [(b"x-forwarded-prefix", prefix)]}
    asyncio.run(ForwardedPrefixMiddleware(app, trusted_hosts=trusted)(scope, None, None))
    return seen


@pytest.mark.parametrize(
    ("trusted", "client"),
    [
        (("10.0.0.0/8",), ("10.42.0.10", 1234)),
        (("192.168.1.5",), ("192.168.1.5", 1234)),
        ("*", ("203.0.113.9", 1234)),
        (("::1",), ("::1", 1234)),
    ],
)
def test_trusted_clients_set_the_prefix(trusted: Any, client: tuple[str, int]) -> None:
    assert seen_scope(trusted, client, b"/ops/")["app_root_path"] == "/ops"


@pytest.mark.parametrize(
    ("trusted", "client"),
    [
        (("10.0.0.0/8",), ("11.0.0.1", 1234)),
        (("127.0.0.1",), None),
        (("127.0.0.1",), ("testclient", 1234)),
    ],
)
def test_other_clients_are_ignored(trusted: Any, client: Any) -> None:
    assert "app_root_path" not in seen_scope(trusted, client, b"/ops")


@pytest.mark.parametrize(
    "prefix", [b"//evil.example", b"ops", b"/a/../b", b'/x"><script>', b"/a b", b"http://x/"]
)
def test_prefixes_that_are_not_plain_paths_are_ignored(prefix: bytes) -> None:
    assert "app_root_path" not in seen_scope("*", ("10.0.0.1", 1), prefix)


def test_bad_trusted_hosts_are_refused() -> None:
    with pytest.raises(ValueError, match="IP address"):
        ForwardedPrefixMiddleware(None, trusted_hosts=("proxy.internal",))
    with pytest.raises(TypeError):
        ForwardedPrefixMiddleware(None, trusted_hosts=(10,))  # type: ignore[arg-type]
