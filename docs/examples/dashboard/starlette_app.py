import contextlib

from starlette.applications import Starlette

from asyncz.contrib.dashboard import AsynczAdmin
from asyncz.schedulers import AsyncIOScheduler

scheduler = AsyncIOScheduler()


@contextlib.asynccontextmanager
async def lifespan(app):
    scheduler.start()
    yield
    scheduler.shutdown()


app = Starlette(lifespan=lifespan)  # FastAPI(lifespan=lifespan) the same way
AsynczAdmin(scheduler=scheduler, url_prefix="/ops/scheduler").include_in(app)

if __name__ == "__main__":
    from starlette.testclient import TestClient

    with TestClient(app) as client:
        print(client.get("/ops/scheduler/").status_code)
