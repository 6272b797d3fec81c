"""Trusting ``X-Forwarded-Prefix`` from reverse proxies, and only from them.

Here: :class:`ForwardedPrefixMiddleware`. A proxy that serves the app under a path of its own
(``https://example.com/ops/`` → the app's ``/``) says so in ``X-Forwarded-Prefix``; the dashboard
then has to put that prefix in front of its links. Anyone can send the header, so it is believed
only when the request comes straight from a configured proxy address or network; from anyone
else it is ignored. The prefix found is put in the ASGI scope as ``app_root_path``.

:class:`AsynczAdmin` puts it in front of the dashboard with ``enable_forward_middleware=True``;
the pages then prefix their links with ``app_root_path``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_networks(hosts: Iterable[str]) -> tuple[bool, tuple[IPNetwork, ...]]:
    if isinstance(hosts, str):
        hosts = (hosts,)
    anyone = False
    networks: list[IPNetwork] = []
    for host in hosts:
        if not isinstance(host, str):
            raise TypeError(f"a trusted host must be a string, got {host!r}")
        host = host.strip()
        if host == "*":
            anyone = True
            continue
        try:
            networks.append(ipaddress.ip_network(host, strict=False))
        except ValueError:
            raise ValueError(
                f"a trusted host must be an IP address, a network (10.0.0.0/8) or '*', got {host!r}"
            ) from None
    return anyone, tuple(networks)


def _clean_prefix(value: str) -> str | None:
    """``/ops/`` → ``/ops``; None for a value that is not a plain path."""
    value = value.strip()
    if not value.startswith("/") or value.startswith("//"):
        return None  # "//evil.example" would make links to another host
    if any(c in value for c in "\\?#\"'<> \t\r\n") or "/../" in f"{value}/":
        return None
    return value.rstrip("/")


class ForwardedPrefixMiddleware:
    """Sets ``scope["app_root_path"]`` from ``X-Forwarded-Prefix`` sent by a trusted proxy.

    ``trusted_hosts``: IP addresses and networks (``"10.0.0.0/8"``) whose requests may set
    the prefix, or ``"*"`` for any client (only behind a proxy that always sets or strips it).
    """

    def __init__(self, app: Any, trusted_hosts: Iterable[str] = ("127.0.0.1", "::1")) -> None:
        self.app = app
        self._anyone, self._networks = _parse_networks(trusted_hosts)

    def _trusted(self, scope: Any) -> bool:
        if self._anyone:
            return True
        client = scope.get("client")
        if not client:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket") and self._trusted(scope):
            for name, value in scope.get("headers") or ():
                if bytes(name).lower() == b"x-forwarded-prefix":
                    prefix = _clean_prefix(bytes(value).decode("latin-1"))
                    if prefix is not None:
                        scope = dict(scope, app_root_path=prefix)
                    break
        await self.app(scope, receive, send)
