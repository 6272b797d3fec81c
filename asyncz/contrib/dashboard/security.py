"""Response headers and the cross-site POST guard, as one plain ASGI middleware.

Here: :class:`SecurityMiddleware` and the header values. Every dashboard response, the error
pages included, carries a Content-Security-Policy that allows scripts from the dashboard's own
origin only (no inline scripts, no ``eval``), and refuses to be framed. A state-changing request
(anything but GET, HEAD and OPTIONS) that the browser marks as coming from another site is
answered 403 before it reaches a view: ``Sec-Fetch-Site: cross-site`` (or ``same-site``, a sibling
subdomain), or, from browsers that do not send that header, an ``Origin`` whose host is not the
request's ``Host``. Requests with neither header (curl, test clients) are not browsers driven by
another page, and pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # Styles may be inline (style attributes); scripts may not.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def is_cross_site(scope: Scope) -> bool:
    """Whether a browser says this request was made by a page of another site."""
    fetch_site = _header(scope, b"sec-fetch-site")
    if fetch_site is not None:
        # "none" is the user typing the address or using a bookmark.
        return fetch_site.strip().lower() not in {"same-origin", "none"}
    origin = _header(scope, b"origin")
    if origin is None:
        return False
    if origin.strip().lower() == "null":
        return True  # sandboxed frames, data: URLs, some redirects
    host = _header(scope, b"host")
    if host is None:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else ""
    parsed = urlsplit(origin.strip())
    origin_host = parsed.netloc.lower()
    host = host.strip().lower()
    default_port = {"http": ":80", "https": ":443"}.get(parsed.scheme, "")
    if default_port:
        origin_host = origin_host.removesuffix(default_port)
        host = host.removesuffix(default_port)
    return origin_host != host


class SecurityMiddleware:
    """Adds the security headers to every response; refuses cross-site state changes (403)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {bytes(k).lower() for k, _ in message.get("headers") or ()}
                headers = list(message.get("headers") or ())
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in names)
                message["headers"] = headers
            await send(message)

        if scope.get("method", "GET").upper() not in SAFE_METHODS and is_cross_site(scope):
            body = b"Cross-site requests cannot change the scheduler.\n"
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send_with_headers)
