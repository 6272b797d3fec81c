import functools
import threading

import asyncz
from asyncz.core.execution import BaseExecutor, Once, run_task_sync


class PerRunThreads(BaseExecutor):
    """A thread per submission."""

    def launch(self, task, run_times):
        # Once: with a timeout, the watchdog may uncount the submission before the thread ends.
        release = Once(functools.partial(self.run_finished, task.id))
        threading.Thread(target=self._run, args=(task, run_times, release), daemon=True).start()

    def _run(self, task, run_times, release):
        try:
            run_task_sync(self.scheduler, task, run_times, self.logger, release=release)
        finally:
            release()


@asyncz.hookimpl
def asyncz_register_executors(register):
    register("per_run_threads", PerRunThreads)


# Used here directly, as an instance; a distribution registers it with the hook above.
if __name__ == "__main__":
    import asyncio

    from asyncz.schedulers import AsyncIOScheduler

    async def main():
        scheduler = AsyncIOScheduler(executors={"default": PerRunThreads()})
        scheduler.add_task(print, args=["ran on", "a thread of its own"])
        scheduler.start()
        await asyncio.sleep(0.3)
        scheduler.shutdown()

    asyncio.run(main())
