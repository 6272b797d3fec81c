# worker.py: runs the scheduler
import os

from lilya.apps import Lilya
from lilya.routing import Include

from asyncz.contrib.dashboard import create_remote_scheduler_app
from asyncz.schedulers import AsyncIOScheduler

os.environ.setdefault("ASYNCZ_REMOTE_TOKEN", "demo-only")  # a shared secret in deployment
scheduler = AsyncIOScheduler()

worker_app = Lilya(
    routes=[
        Include(
            "/asyncz-remote",
            app=create_remote_scheduler_app(scheduler, token=os.environ["ASYNCZ_REMOTE_TOKEN"]),
        )
    ],
    on_startup=[scheduler.start],
    on_shutdown=[scheduler.shutdown],
)
