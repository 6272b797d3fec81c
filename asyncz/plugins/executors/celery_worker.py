"""The worker side of the ``celery`` executor: one generic Celery task that runs any allowed
callable by its ``"module:qualname"`` reference.

In the app the workers run (``celery -A yourproject.celery_app worker``)::

    from asyncz.plugins.executors.celery_worker import install

    app = Celery("fleet", broker="amqp://...", backend="redis://...")
    install(app, allowed_modules=["yourproject.jobs"])

so no Celery task has to be declared per function. The task refuses, before importing anything,
a reference outside ``allowed_modules`` (a module named there, or one inside a package named
there): a message on the broker is no licence to import and call whatever it names. A coroutine
function's coroutine is run to completion on a fresh event loop.

What it stores in the result backend, for the executor: ``STARTED`` with the worker's host
name, process id and start time as the run begins, then the return value or the exception.
The run id is the Celery task id: it is in Celery's own log lines for the task, and in the line
this module logs at INFO as the run begins.

Not here: the sending side (:mod:`asyncz.plugins.executors.celery`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from asyncz.core.converters import ref_to_obj
from asyncz.core.execution import await_with_timeout

__all__ = ["ReferenceNotAllowed", "install", "is_allowed"]

logger = logging.getLogger("asyncz.celery_worker")
UTC = timezone.utc


class ReferenceNotAllowed(PermissionError):
    """A message named a callable outside the modules this worker is configured to run."""


def is_allowed(reference: str, allowed_modules: Iterable[str]) -> bool:
    """Whether ``reference``'s module is one of ``allowed_modules`` or inside one of them."""
    module = reference.partition(":")[0]
    return any(module == allowed or module.startswith(allowed + ".") for allowed in allowed_modules)


def _timeout_message(meta: Mapping[str, Any], run_id: str, what: str) -> str:
    return (
        f"run {run_id} of task {meta.get('task')!r} exceeded its timeout of "
        f"{meta['timeout']:g} s; {what}"
    )


def install(
    app: Any,
    allowed_modules: Iterable[str] | None = None,
    *,
    name: str = "asyncz.run",
    **task_options: Any,
) -> Any:
    """Register the generic asyncz task in the Celery ``app`` and return it.

    :param allowed_modules: module names whose callables (and their submodules') may run;
        default: the app's ``asyncz_allowed_modules`` setting. Nothing runs when it is empty.
    :param name: the task name; the executor's ``task_name`` must match
    :param task_options: more options for ``app.task`` (e.g. ``acks_late=True``)
    """
    if allowed_modules is None:
        allowed_modules = app.conf.get("asyncz_allowed_modules") or ()
    if isinstance(allowed_modules, str):
        allowed_modules = [part.strip() for part in allowed_modules.split(",") if part.strip()]
    allowed = tuple(allowed_modules)
    for module in allowed:
        if not isinstance(module, str) or not module or ":" in module:
            raise ValueError(f"allowed_modules must hold module names, got {module!r}")

    from celery.exceptions import SoftTimeLimitExceeded  # type: ignore[import-untyped]

    @app.task(name=name, bind=True, track_started=False, shared=False, **task_options)  # type: ignore[untyped-decorator]
    def run(
        self: Any,
        reference: str,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Any:
        meta = dict(meta or {})
        run_id = self.request.id
        if not isinstance(reference, str) or not is_allowed(reference, allowed):
            raise ReferenceNotAllowed(
                f"this worker does not run {reference!r}: its module is not in the allowed "
                f"modules {list(allowed)!r} (install(app, allowed_modules=[...]))"
            )
        fn = ref_to_obj(reference)
        started_at = datetime.now(UTC)
        logger.info("asyncz run %s of task %r: %s", run_id, meta.get("task"), reference)
        if not self.request.called_directly:
            self.update_state(
                state="STARTED",
                meta={
                    "hostname": self.request.hostname,
                    "pid": os.getpid(),
                    "started_at": started_at.isoformat(),
                },
            )
        timeout = meta.get("timeout")
        start = time.perf_counter()
        try:
            result = fn(*(args or ()), **(kwargs or {}))
            if inspect.isawaitable(result):
                message = _timeout_message(meta, run_id, "cancelled") if timeout else ""
                result = asyncio.run(_await(await_with_timeout(result, timeout, message)))
        except SoftTimeLimitExceeded:
            raise TimeoutError(
                _timeout_message(meta, run_id, "stopped by Celery's soft time limit")
            ) from None
        if timeout is not None and time.perf_counter() - start > timeout:
            raise TimeoutError(_timeout_message(meta, run_id, "it ran to completion"))
        return result

    return run


async def _await(awaitable: Any) -> Any:
    return await awaitable
