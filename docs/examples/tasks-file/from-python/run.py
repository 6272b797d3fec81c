import asyncio
from pathlib import Path

from asyncz.tasksfile import load_tasks_file


async def main():
    spec = load_tasks_file(Path(__file__).with_name("tasks.toml"))  # TasksFileError if not valid
    scheduler = spec.create_scheduler()  # keyword arguments override the file's options
    scheduler.start()
    print(spec.apply(scheduler))  # added, updated, unchanged, removed, expired
    print(spec.apply(scheduler))  # again: nothing to do
    await asyncio.sleep(1.5)  # a service would wait for ever: await asyncio.Event().wait()
    scheduler.shutdown()


asyncio.run(main())
