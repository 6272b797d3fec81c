"""Optional login: users, the username/password backend, the signed session cookie, the gate.

Here: :class:`User`, :class:`AuthBackend`, :class:`SimpleUsernamePasswordBackend`,
:class:`SessionSigner` and :class:`LoginGate` (an ASGI middleware).

The session cookie holds the user's id and name and an expiry, signed with HMAC-SHA256; nothing
in it is trusted unless the signature checks out, and nothing is ever unpickled. It is HttpOnly
(no script reads it), SameSite (a page of another site cannot send it along with a POST), and
Secure on HTTPS requests or with ``https_only``. Logging in is a POST like any other, so the
cross-site guard of :mod:`asyncz.contrib.dashboard.security` covers it too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import attrs

from asyncz.contrib.dashboard.security import ASGIApp, Receive, Scope, Send


@attrs.frozen(kw_only=True)
class User:
    """A logged-in person, as the backend recognises them."""

    id: str
    name: str | None = None
    is_admin: bool = True

    @property
    def display_name(self) -> str:
        return self.name or self.id


class AuthBackend(Protocol):
    """Checks a login form: returns the :class:`User`, or ``None`` for wrong credentials."""

    async def authenticate(self, username: str, password: str) -> User | None: ...


Verify = Callable[[str, str], "User | Awaitable[User | None] | None"]


class SimpleUsernamePasswordBackend:
    """A backend that asks ``verify(username, password)`` (a function or a coroutine function)
    for the user; ``verify`` should compare secrets in constant time (``hmac.compare_digest``)."""

    def __init__(self, verify: Verify) -> None:
        if not callable(verify):
            raise TypeError(
                f"verify must be a callable (username, password) -> User | None, got {verify!r}"
            )
        self.verify = verify

    async def authenticate(self, username: str, password: str) -> User | None:
        result = self.verify(username, password)
        if inspect.isawaitable(result):
            result = await result
        if result is not None and not isinstance(result, User):
            raise TypeError(f"verify must return a User or None, got {result!r}")
        return result


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Signs and checks the session cookie's value: ``payload.signature``, both base64url."""

    def __init__(self, secret_key: str | None, max_age: int) -> None:
        key = secret_key if secret_key is not None else secrets.token_urlsafe(32)
        self._key = hashlib.sha256(b"asyncz-dashboard-session:" + key.encode()).digest()
        self.max_age = max_age

    def _signature(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def dumps(self, user: User) -> str:
        body = {"id": user.id, "name": user.name, "exp": int(time.time()) + self.max_age}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._signature(payload)}"

    def loads(self, value: str | None) -> User | None:
        """The user of a valid, unexpired cookie value; ``None`` for anything else."""
        if not value or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        try:
            expected = self._signature(payload)
        except UnicodeEncodeError:
            return None
        if not hmac.compare_digest(expected, signature):
            return None
        try:
            body = json.loads(_unb64(payload))
        except ValueError:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("exp"), int):
            return None
        if body["exp"] < time.time() or not isinstance(body.get("id"), str):
            return None
        name = body.get("name")
        return User(id=body["id"], name=name if isinstance(name, str) else None)


def cookie_value(scope: Scope, name: str) -> str | None:
    for key, raw in scope.get("headers") or ():
        if key.lower() != b"cookie":
            continue
        for part in bytes(raw).decode("latin-1").split(";"):
            cookie_name, _, value = part.strip().partition("=")
            if cookie_name == name:
                return value
    return None


class LoginGate:
    """Lets a request through with a valid session (its user in ``scope["asyncz_user"]``);
    sends anyone else to the login page: a 303 for a page, a 401 for an htmx request or a POST.
    The login and logout pages and the static files are open to all."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        signer: SessionSigner,
        cookie: str,
        open_paths: tuple[str, ...],
        open_prefixes: tuple[str, ...],
        login_path: Callable[[Scope], str],
    ) -> None:
        self.app = app
        self.signer = signer
        self.cookie = cookie
        self.open_paths = open_paths
        self.open_prefixes = open_prefixes
        self.login_path = login_path

    def _local_path(self, scope: Scope) -> str:
        path = str(scope.get("path", ""))
        root = str(scope.get("root_path", ""))
        rest = path[len(root) :] if root and path.startswith(root) else path
        return rest or "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        user = self.signer.loads(cookie_value(scope, self.cookie))
        if user is not None:
            scope["asyncz_user"] = user
            await self.app(scope, receive, send)
            return
        local = self._local_path(scope).rstrip("/") or "/"
        if local in self.open_paths or local.startswith(self.open_prefixes):
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET")).upper()
        htmx = any(k.lower() == b"hx-request" for k, _ in scope.get("headers") or ())
        if method in {"GET", "HEAD"} and not htmx:
            headers = [(b"location", self.login_path(scope).encode("latin-1"))]
            await _respond(send, 303, b"", headers)
            return
        await _respond(
            send,
            401,
            b"Log in to use the dashboard.\n",
            [(b"hx-redirect", self.login_path(scope).encode("latin-1"))],
        )


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def request_is_https(scope: Scope) -> bool:
    return scope.get("scheme") == "https"


__all__ = [
    "AuthBackend",
    "LoginGate",
    "SessionSigner",
    "SimpleUsernamePasswordBackend",
    "User",
    "cookie_value",
    "request_is_https",
]
