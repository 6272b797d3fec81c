"""ASGI lifespan integration: ``app = scheduler.asgi(app)``.

The scheduler starts when the server sends ``lifespan.startup`` and shuts down on
``lifespan.shutdown``; every other kind of scope goes straight to the wrapped app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["LifespanApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class LifespanApp:
    """An ASGI app that runs ``scheduler`` for as long as the server runs ``app``.

    :param handle_lifespan: answer the lifespan protocol here, for apps that do not speak it
    :param wait: on shutdown, wait for running tasks to finish
    """

    def __init__(self, app: Any, scheduler: Any, handle_lifespan: bool, wait: bool) -> None:
        self.app = app
        self.scheduler = scheduler
        self.handle_lifespan = handle_lifespan
        self.wait = wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "lifespan":
            await self.app(scope, receive, send)
            return
        if self.handle_lifespan:
            await self._answer_lifespan(receive, send)
            return

        async def receive_and_react() -> Message:
            message = await receive()
            if message.get("type") == "lifespan.startup":
                await self.scheduler._lifespan_start()
            elif message.get("type") == "lifespan.shutdown":
                await self.scheduler._lifespan_stop(self.wait)
            return message

        await self.app(scope, receive_and_react, send)

    async def _answer_lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            kind = message.get("type")
            if kind == "lifespan.startup":
                try:
                    await self.scheduler._lifespan_start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                try:
                    await self.scheduler._lifespan_stop(self.wait)
                except Exception as exc:
                    await send({"type": "lifespan.shutdown.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return
