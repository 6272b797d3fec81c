import asyncio

from asyncz.schedulers import AsyncIOScheduler

scheduler = AsyncIOScheduler()


async def app(scope, receive, send):
    """An ASGI app that does not speak the lifespan protocol itself."""
    if scope["type"] == "lifespan":
        raise RuntimeError("unexpected: asyncz answers the lifespan protocol")


# handle_lifespan=True: asyncz answers lifespan startup/shutdown, starting and stopping the
# scheduler; an app that speaks the protocol itself is wrapped with scheduler.asgi(app).
app = scheduler.asgi(app, handle_lifespan=True)


async def serve_lifespan():
    """What an ASGI server (uvicorn, hypercorn) does at start-up and shutdown."""
    messages = asyncio.Queue()
    for kind in ("lifespan.startup", "lifespan.shutdown"):
        messages.put_nowait({"type": kind})

    async def send(message):
        print(message["type"], "- scheduler running:", scheduler.running)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, messages.get, send)


asyncio.run(serve_lifespan())
