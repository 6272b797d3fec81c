"""The login and logout pages (when ``AsynczAdmin(enable_login=True)``).

Here: :class:`AuthPages`. Credentials go to the admin's backend; a success sets the signed
session cookie (see :mod:`asyncz.contrib.dashboard.admin.auth`) and sends the browser to the
overview. A failure answers 401 with the form again, without saying which half was wrong.
"""

from __future__ import annotations

from lilya.requests import Request
from lilya.responses import RedirectResponse, Response

from asyncz.contrib.dashboard.admin.auth import request_is_https
from asyncz.contrib.dashboard.controllers.base import Pages

_MAX_FIELD = 1024


class AuthPages(Pages):
    def _cookie(self, request: Request, response: Response, value: str, max_age: int) -> None:
        config = self.admin.config
        response.set_cookie(
            config.session_cookie,
            value,
            path=self.admin.cookie_path(request),
            domain=config.domain,
            secure=config.https_only or request_is_https(request.scope),
            max_age=max_age,
            httponly=True,
            samesite=config.same_site,  # type: ignore[arg-type]
        )

    async def login_form(self, request: Request) -> Response:
        return self.render(request, "login.html", section="login")

    async def login(self, request: Request) -> Response:
        form = await request.form()
        username = str(form.get("username") or "")[:_MAX_FIELD]
        password = str(form.get("password") or "")[:_MAX_FIELD]
        backend = self.admin.backend
        user = await backend.authenticate(username, password) if backend is not None else None
        if user is None:
            return self.render(
                request,
                "login.html",
                status_code=401,
                section="login",
                error="Wrong username or password.",
                username=username,
            )
        response = RedirectResponse(self.urls(request).section(""), status_code=303)
        self._cookie(request, response, self.admin.signer.dumps(user), self.admin.config.max_age)
        return response

    async def logout(self, request: Request) -> Response:
        response = self.render(request, "login.html", section="login", notice="Logged out.")
        self._cookie(request, response, "", 0)
        return response
