# web.py: serves the dashboard, holds no scheduler
import os

from lilya.apps import Lilya

from asyncz.contrib.dashboard import AsynczAdmin, RemoteSchedulerClient

os.environ.setdefault("ASYNCZ_REMOTE_TOKEN", "demo-only")
app = Lilya()

remote = RemoteSchedulerClient(
    "http://worker:8000/asyncz-remote", token=os.environ["ASYNCZ_REMOTE_TOKEN"]
)
AsynczAdmin(scheduler=remote).include_in(app)
