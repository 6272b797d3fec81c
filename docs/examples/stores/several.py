import asyncio
import tempfile

from asyncz.schedulers import AsyncIOScheduler


def archive(path):
    print("archiving", path)


async def main():
    folder = tempfile.mkdtemp()
    scheduler = AsyncIOScheduler(
        stores={
            "default": {"type": "sqlalchemy", "database": f"sqlite:///{folder}/tasks.db"},
            "files": {"type": "file", "directory": f"{folder}/tasks"},
            "scratch": {"type": "memory"},
        }
    )
    scheduler.start()
    scheduler.add_task(archive, "cron", hour=1, args=["/srv/a"], id="nightly")  # default
    scheduler.add_task(archive, "interval", hours=6, args=["/srv/b"], id="b", store="files")
    scheduler.add_task(archive, args=["/tmp/c"], id="now", store="scratch")
    await asyncio.sleep(0.2)
    print(sorted((t.id, t.store_alias) for t in scheduler.get_tasks()))
    scheduler.shutdown()


asyncio.run(main())
