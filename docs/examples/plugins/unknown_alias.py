from asyncz.exceptions import UnknownAliasError
from asyncz.schedulers import AsyncIOScheduler

scheduler = AsyncIOScheduler()
try:
    scheduler.add_task(print, "intervall", seconds=5)
except UnknownAliasError as exc:  # also a LookupError
    print(exc)
