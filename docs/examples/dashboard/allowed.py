from asyncz.contrib.dashboard import AsynczAdmin
from asyncz.schedulers import AsyncIOScheduler

scheduler = AsyncIOScheduler()
admin = AsynczAdmin(
    scheduler=scheduler, allowed_callables=["myapp.jobs:*", "myapp.reports:nightly"]
)
