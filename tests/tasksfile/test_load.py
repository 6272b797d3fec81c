"""Reading and checking tasks files: what a good file becomes, and what each mistake says."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from asyncz import hookimpl
from asyncz.core.plugins import PluginRegistry
from asyncz.tasksfile import DEFAULT_STORE, TasksFileError, _spec, load_tasks_file
from asyncz.tasksfile.command import COMMAND_REFERENCE

HEADER = '[asyncz]\ntimezone = "UTC"\n'


def write(tmp_path: Path, text: str, name: str = "tasks.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_full_file_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[asyncz]
timezone = "Europe/Berlin"
owns_tasks = true

[stores.default]
type = "sqlalchemy"
database = "sqlite:///x.db"

[stores.scratch]
type = "memory"

[executors.default]
type = "asyncio"

[executors.pool]
type = "threadpool"
max_workers = 4

[task_defaults]
coalesce = false
max_instances = 2
mistrigger_grace_time = 30
on_crash = "rerun"

[[tasks]]
id = "sum"
name = "adds two numbers"
callable = "tests.tasksfile.jobs:two"
args = [1, 2]
kwargs = { scale = 3 }
trigger = { type = "interval", minutes = 5, start_at = 2030-01-01T00:00:00 }
executor = "pool"
store = "scratch"
max_instances = 1
timeout = 10
paused = true

[[tasks]]
id = "backup"
command = ["echo", "a b"]
cwd = "."
env = { MODE = "fast" }
trigger = { type = "cron", crontab = "0 3 * * *" }
timeout = 60

[[tasks]]
id = "either"
command = "echo 'hello world' | tr a-z A-Z"
shell = true
trigger = { type = "or", triggers = [
    { type = "cron", hour = 9 },
    { type = "interval", hours = 12 },
] }
""",
    )
    spec = load_tasks_file(path)
    assert spec.timezone == "Europe/Berlin"
    assert spec.owns_tasks == ("default", "scratch")
    assert spec.stores["default"] == {"type": "sqlalchemy", "database": "sqlite:///x.db"}
    assert spec.executors["pool"] == {"type": "threadpool", "max_workers": 4}
    assert spec.task_defaults == {
        "coalesce": False,
        "max_instances": 2,
        "mistrigger_grace_time": 30,
        "on_crash": "rerun",
    }
    first, backup, either = spec.tasks
    assert first.id == "sum"
    assert first.reference == "tests.tasksfile.jobs:two"
    assert first.args == (1, 2)
    assert first.kwargs == {"scale": 3}
    assert first.trigger.alias == "interval"
    assert first.trigger.given == {"minutes", "start_at"}
    assert (first.executor, first.store, first.paused) == ("pool", "scratch", True)
    assert first.options == {"max_instances": 1, "timeout": 10}
    assert backup.reference == COMMAND_REFERENCE
    assert backup.name == "echo 'a b'"
    assert backup.kwargs == {
        "command": ["echo", "a b"],
        "cwd": str(tmp_path.resolve()),
        "env": {"MODE": "fast"},
        "timeout": 60.0,
        "task_id": "backup",
    }
    assert either.kwargs["shell"] is True
    assert [child.alias for child in either.trigger.options["triggers"]] == ["cron", "interval"]
    assert either.trigger.options["triggers"][1].key == "tasks[2].trigger.triggers[1]"
    # Scheduler options: overrides win, stores and executors merged by alias.
    options = spec.scheduler_options(stores={"default": {"type": "memory"}}, timezone="UTC")
    assert options["stores"] == {"default": {"type": "memory"}, "scratch": {"type": "memory"}}
    assert options["timezone"] == "UTC"


def test_without_stores_the_default_store_is_sqlite_in_the_working_directory(
    tmp_path: Path,
) -> None:
    spec = load_tasks_file(write(tmp_path, HEADER))
    assert spec.stores == {"default": DEFAULT_STORE}
    assert DEFAULT_STORE == {"type": "sqlalchemy", "database": "sqlite:///asyncz.db"}
    assert spec.owns_tasks == ()
    assert spec.tasks == ()


def test_the_files_directory_is_on_the_import_path(tmp_path: Path) -> None:
    (tmp_path / "mytasksmod_a1.py").write_text("def go():\n    return 1\n")
    path = write(
        tmp_path,
        '[[tasks]]\nid = "go"\ncallable = "mytasksmod_a1:go"\n'
        'trigger = { type = "interval", seconds = 5 }\n',
    )
    try:
        spec = load_tasks_file(path)
    finally:
        sys.modules.pop("mytasksmod_a1", None)
    assert spec.tasks[0].reference == "mytasksmod_a1:go"
    assert str(tmp_path) in sys.path


TASK = '[[tasks]]\nid = "t"\ncallable = "tests.tasksfile.jobs:note"\nargs = ["/dev/null"]\n'
INTERVAL = 'trigger = { type = "interval", seconds = 5 }\n'

BAD = [
    # (file text, key path, words the message has)
    ("[asyncz\n", None, ["not valid TOML", "line 1"]),
    ("[tasx]\n", "tasx", ["unknown key", "did you mean 'tasks'", "valid keys here are"]),
    ('[asyncz]\ntimezone = "Mars/Base"\n', "asyncz.timezone", ["'Mars/Base'", "IANA name"]),
    ("[asyncz]\nowns_tasks = 1\n", "asyncz.owns_tasks", ["true, false or", "got 1"]),
    ('[asyncz]\nowns_tasks = ["nope"]\n', "asyncz.owns_tasks[0]", ["no store 'nope'"]),
    ('[asyncz]\ntimezon = "UTC"\n', "asyncz.timezon", ["did you mean 'timezone'"]),
    (
        '[stores.default]\ntype = "sqlalchemi"\n',
        "stores.default.type",
        ["'sqlalchemi'", "did you mean 'sqlalchemy'", "registered:"],
    ),
    ("[stores.default]\nurl = 1\n", "stores.default.type", ["missing", "memory"]),
    (
        '[executors.pool]\ntype = "threadpool"\nworkers = 4\n',
        "executors.pool.workers",
        ["takes no option 'workers'", "did you mean 'max_workers'"],
    ),
    (
        "[task_defaults]\nmax_instances = 0\n",
        "task_defaults.max_instances",
        ["max_instances must be a positive integer", "got 0"],
    ),
    ('[task_defaults]\non_crash = "retry"\n', "task_defaults.on_crash", ["'skip'", "'rerun'"]),
    ("[task_defaults]\ncoalesc = true\n", "task_defaults.coalesc", ["did you mean 'coalesce'"]),
    ("tasks = 3\n", "tasks", ["array of tables"]),
    ('[[tasks]]\ncallable = "tests.tasksfile.jobs:note"\n', "tasks[0].id", ["missing"]),
    ("[[tasks]]\nid = 5\n", "tasks[0].id", ["must be a string"]),
    ('[[tasks]]\nid = "  "\n', "tasks[0].id", ["not only whitespace"]),
    (TASK, "tasks[0].trigger", ["missing", 'type = "interval"']),
    (
        TASK + 'trigger = { type = "intervall", seconds = 5 }\n',
        "tasks[0].trigger.type",
        ["'intervall'", "did you mean 'interval'"],
    ),
    (TASK + "trigger = { seconds = 5 }\n", "tasks[0].trigger.type", ["missing", "cron"]),
    (
        TASK + 'trigger = { type = "interval", hourz = 5 }\n',
        "tasks[0].trigger.hourz",
        ["unknown argument", "'hourz'", "did you mean 'hours'", "valid arguments are"],
    ),
    (
        TASK + 'trigger = { type = "interval", hours = "two" }\n',
        "tasks[0].trigger.hours",
        ["hours must be a number", "'two'"],
    ),
    (
        TASK + 'trigger = { type = "cron", hour = 99 }\n',
        "tasks[0].trigger.hour",
        ["hour", "99", "0-23"],
    ),
    (
        TASK + 'trigger = { type = "cron", crontab = "* * *" }\n',
        "tasks[0].trigger.crontab",
        ["* * *"],
    ),
    (
        TASK + 'trigger = { type = "interval", crontab = "* * * * *" }\n',
        "tasks[0].trigger.crontab",
        ["takes no crontab"],
    ),
    (
        TASK + 'trigger = { type = "or", triggers = [] }\n',
        "tasks[0].trigger.triggers",
        ["non-empty array"],
    ),
    (
        TASK + 'trigger = { type = "and", triggers = [{ type = "cron", minute = 61 }] }\n',
        "tasks[0].trigger.triggers[0].minute",
        ["minute", "61"],
    ),
    (TASK + "trigger = 5\n", "tasks[0].trigger", ["must be a table"]),
    (TASK + INTERVAL + "paused = 1\n", "tasks[0].paused", ["true or false"]),
    (TASK + INTERVAL + "max_instances = -1\n", "tasks[0].max_instances", ["positive integer"]),
    (
        TASK + INTERVAL + "mistrigger_grace_time = 0\n",
        "tasks[0].mistrigger_grace_time",
        ["positive"],
    ),
    (TASK + INTERVAL + 'timeout = "long"\n', "tasks[0].timeout", ["positive", "'long'"]),
    (TASK + INTERVAL + 'executor = "pool"\n', "tasks[0].executor", ["no executor 'pool'"]),
    (
        TASK + INTERVAL + 'store = "elsewhere"\n',
        "tasks[0].store",
        ["no store 'elsewhere'", "known: default"],
    ),
    (TASK + INTERVAL + "retries = 3\n", "tasks[0].retries", ["unknown key", "valid keys"]),
    (TASK + INTERVAL + "shell = true\n", "tasks[0].shell", ["only a command task"]),
    (TASK + INTERVAL + TASK + INTERVAL, "tasks[1].id", ["also the id of tasks[0]"]),
    ('[[tasks]]\nid = "t"\n' + INTERVAL, "tasks[0]", ["exactly one of", "neither"]),
    (
        '[[tasks]]\nid = "t"\ncallable = "tests.tasksfile.jobs:note"\ncommand = "ls"\n' + INTERVAL,
        "tasks[0]",
        ["exactly one of", "both"],
    ),
    (
        '[[tasks]]\nid = "t"\ncallable = "tests.tasksfile.jobs.note"\n' + INTERVAL,
        "tasks[0].callable",
        ["'package.module:function'"],
    ),
    (
        '[[tasks]]\nid = "t"\ncallable = "tests.tasksfile.nojobs:note"\n' + INTERVAL,
        "tasks[0].callable",
        ["cannot be imported", "python_path"],
    ),
    (
        '[[tasks]]\nid = "t"\ncallable = "tests.tasksfile.jobs:nope"\n' + INTERVAL,
        "tasks[0].callable",
        ["'nope' not found"],
    ),
    (
        '[[tasks]]\nid = "t"\ncallable = "tests.tasksfile.jobs:NOT_CALLABLE"\n' + INTERVAL,
        "tasks[0].callable",
        ["not callable"],
    ),
    (
        '[[tasks]]\nid = "t"\ncallable = "tests.tasksfile.jobs:two"\nargs = [1]\n' + INTERVAL,
        "tasks[0].args",
        ["two"],
    ),
    (
        '[[tasks]]\nid = "t"\ncallable = "tests.tasksfile.jobs:two"\nargs = [1, 2]\n'
        "kwargs = { size = 2 }\n" + INTERVAL,
        "tasks[0].kwargs",
        ["size"],
    ),
    (
        '[[tasks]]\nid = "t"\ncallable = "tests.tasksfile.jobs:two"\nargs = "1, 2"\n' + INTERVAL,
        "tasks[0].args",
        ["must be an array"],
    ),
    ('[[tasks]]\nid = "t"\ncommand = ""\n' + INTERVAL, "tasks[0].command", ["empty"]),
    (
        '[[tasks]]\nid = "t"\ncommand = [1]\n' + INTERVAL,
        "tasks[0].command",
        ["a string or a non-empty array of strings"],
    ),
    (
        '[[tasks]]\nid = "t"\ncommand = "no-such-program-xyz --now"\n' + INTERVAL,
        "tasks[0].command",
        ["'no-such-program-xyz' is not a program on PATH"],
    ),
    (
        '[[tasks]]\nid = "t"\ncommand = "echo \'open"\n' + INTERVAL,
        "tasks[0].command",
        ["cannot be split"],
    ),
    (
        '[[tasks]]\nid = "t"\ncommand = ["echo", "x"]\nshell = true\n' + INTERVAL,
        "tasks[0].command",
        ["one string"],
    ),
    (
        '[[tasks]]\nid = "t"\ncommand = "echo"\nargs = [1]\n' + INTERVAL,
        "tasks[0].args",
        ["no args/kwargs"],
    ),
    (
        '[[tasks]]\nid = "t"\ncommand = "echo"\ncwd = "missing-dir"\n' + INTERVAL,
        "tasks[0].cwd",
        ["is not a directory"],
    ),
    (
        '[[tasks]]\nid = "t"\ncommand = "echo"\nenv = { N = 1 }\n' + INTERVAL,
        "tasks[0].env",
        ["table of strings"],
    ),
]


@pytest.mark.parametrize(("text", "key", "words"), BAD)
def test_each_mistake_names_the_file_the_key_and_what_is_valid(
    tmp_path: Path, text: str, key: str | None, words: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TasksFileError) as caught:
        load_tasks_file(path)
    error = caught.value
    assert error.key == key
    assert error.path == str(path)
    message = str(error)
    expected_start = f"{path}: {key}: " if key else f"{path}: "
    assert message.startswith(expected_start), message
    for word in words:
        assert word in message, (word, message)
    assert isinstance(error, ValueError)


def test_the_bad_value_is_kept_on_the_error(tmp_path: Path) -> None:
    path = write(tmp_path, TASK + 'trigger = { type = "interval", hours = "two" }\n')
    with pytest.raises(TasksFileError) as caught:
        load_tasks_file(path)
    assert caught.value.value == "two"


def test_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TasksFileError, match=r"missing\.toml: cannot read the file"):
        load_tasks_file(tmp_path / "missing.toml")


class _BrokenStorePlugin:
    """Registers a store whose module cannot be imported (as a missing driver would)."""

    @hookimpl
    def asyncz_register_stores(self, register: Any) -> None:
        register("broken", "no_such_driver_module_xyz:Store")


def test_a_store_whose_dependency_is_missing_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = PluginRegistry()
    registry.register(_BrokenStorePlugin(), "broken-plugin")
    path = write(tmp_path, '[stores.archive]\ntype = "broken"\n')
    with pytest.raises(TasksFileError) as caught:
        load_tasks_file(path, plugins=registry)
    assert caught.value.key == "stores.archive.type"
    assert "no_such_driver_module_xyz" in str(caught.value)
    # The default store the file did not write: what to install, or what to write instead.
    monkeypatch.setattr(_spec, "DEFAULT_STORE", {"type": "broken"})
    spec = load_tasks_file(write(tmp_path, HEADER), plugins=registry)
    with pytest.raises(TasksFileError) as caught:
        spec.create_scheduler(plugin_registry=registry)
    assert caught.value.key == "stores.default"
    assert "the default store (SQLite in ./asyncz.db" in str(caught.value)
    assert "pip install 'asyncz[sqlalchemy]'" in str(caught.value)
