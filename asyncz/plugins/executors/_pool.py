"""What the thread-pool and process-pool executors share: their options and shutdown rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asyncz.core.execution import BaseExecutor

__all__ = ["BasePoolExecutor"]


class BasePoolExecutor(BaseExecutor):
    """An executor backed by a pool of workers.

    :param max_workers: the most runs executing at the same time (default 10, as in Asyncz)
    :param pool_kwargs: options for the pool itself (see each executor)
    :param cancel_futures: on shutdown, report runs not yet started as not run even when
        waiting for the running ones
    :param overwrite_wait: when not None, used instead of the ``wait`` given to
        :meth:`shutdown` (for schedulers that shut down with a fixed ``wait``)
    """

    #: options ``pool_kwargs`` may hold; subclasses narrow it
    pool_options: frozenset[str] = frozenset()

    def __init__(
        self,
        max_workers: int = 10,
        pool_kwargs: Mapping[str, Any] | None = None,
        cancel_futures: bool = False,
        overwrite_wait: bool | None = None,
    ) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers must be an integer >= 1, got {max_workers!r}")
        if pool_kwargs is not None and not isinstance(pool_kwargs, Mapping):
            raise TypeError(f"pool_kwargs must be a mapping of pool options, got {pool_kwargs!r}")
        if not isinstance(cancel_futures, bool):
            raise TypeError(f"cancel_futures must be True or False, got {cancel_futures!r}")
        if overwrite_wait is not None and not isinstance(overwrite_wait, bool):
            raise TypeError(f"overwrite_wait must be True, False or None, got {overwrite_wait!r}")
        super().__init__()
        self.max_workers = max_workers
        self.pool_kwargs = dict(pool_kwargs or {})
        unknown = {k: v for k, v in self.pool_kwargs.items() if k not in self.pool_options}
        if unknown:
            from asyncz.core.converters import reject_unknown_options

            reject_unknown_options(f"{type(self).__name__} pool_kwargs", unknown, self.pool_options)
        self.cancel_futures = cancel_futures
        self.overwrite_wait = overwrite_wait

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting work. With ``wait``, return once running work has finished (runs
        already reported as timed out excepted); without it, report runs not yet started as
        not run and let running ones finish in the background.

        Safe on the scheduler's event-loop thread: pool workers never need that loop.
        """
        if not self.accepting:
            return
        if self.overwrite_wait is not None:
            wait = self.overwrite_wait
        self._accepting = False
        queued = self.take_queued()
        if wait and not self.cancel_futures:
            for task, run_times in queued:
                self._launch_or_release(task, run_times)
        else:
            self.not_run(queued, "the executor was shut down before they started")
            self.cancel_not_started()
        if wait:
            self.wait_idle()
        self.close_pool(wait)

    def cancel_not_started(self) -> None:
        """Report runs waiting for a worker as not run."""

    def close_pool(self, wait: bool) -> None:
        """Let the pool go once shutdown is done with it."""
