"""Tasks files: a scheduler's stores, executors, defaults and tasks written down in TOML.

::

    from asyncz.tasksfile import load_tasks_file

    spec = load_tasks_file("tasks.toml")    # read and check; TasksFileError names what is wrong
    scheduler = spec.create_scheduler()     # configured as the file says, not started
    scheduler.start()
    report = spec.apply(scheduler)          # stored tasks updated by id, run state kept

The format is described in ``docs/tasks-file.md``; :func:`schema` returns its JSON Schema (the
file ``schema.json`` beside this module, for editors). Command tasks run through
:func:`asyncz.tasksfile.command.run_command`.

Here: the public names. The reading and checking live in ``_spec``, applying in ``_apply``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from asyncz.tasksfile._apply import ApplyReport
from asyncz.tasksfile._spec import (
    DEFAULT_STORE,
    TasksFile,
    TasksFileError,
    TaskSpec,
    TriggerSpec,
    load_tasks_file,
)
from asyncz.tasksfile.command import CommandFailedError, run_command

__all__ = [
    "DEFAULT_STORE",
    "ApplyReport",
    "CommandFailedError",
    "TaskSpec",
    "TasksFile",
    "TasksFileError",
    "TriggerSpec",
    "load_tasks_file",
    "run_command",
    "schema",
]


def schema() -> dict[str, Any]:
    """The JSON Schema of the tasks file format (shipped as ``asyncz/tasksfile/schema.json``)."""
    text = resources.files(__name__).joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]
