"""The JSON Schema shipped for editors: the example files validate against it, it refuses what
the loader refuses, and it cannot drift from the loader's keys or from the trigger plugins'
parameters."""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from asyncz.core.plugins import default_registry
from asyncz.tasksfile import _spec, load_tasks_file, schema
from tests.tasksfile.test_load import test_a_full_file_is_read as write_full_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


def as_json(path: Path) -> Any:
    """The file as an editor's TOML support hands it to a JSON Schema validator: TOML dates
    and times become strings."""
    return json.loads(json.dumps(tomllib.loads(path.read_text()), default=str))


def validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    document = schema()
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


def test_the_schema_ships_inside_the_package() -> None:
    path = Path(_spec.__file__).with_name("schema.json")
    assert json.loads(path.read_text()) == schema()


def test_there_are_example_files() -> None:
    assert ROOT / "examples" / "tasks.toml" in EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_files_validate_against_the_schema_and_load(path: Path) -> None:
    errors = sorted(validator().iter_errors(as_json(path)), key=str)
    assert errors == [], [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    spec = load_tasks_file(path)
    assert spec.tasks


def test_the_loaders_full_example_validates(tmp_path: Path) -> None:
    write_full_file(tmp_path)  # checks and leaves tasks.toml there
    errors = list(validator().iter_errors(as_json(tmp_path / "tasks.toml")))
    assert errors == []


@pytest.mark.parametrize(
    "text",
    [
        "[tasx]\n",
        '[asyncz]\nowns_tasks = "yes"\n',
        "[task_defaults]\nmax_instances = 0\n",
        '[[tasks]]\nid = "a"\ntrigger = { type = "interval", seconds = 1 }\n',  # no callable
        '[[tasks]]\nid = "a"\ncallable = "m:f"\ncommand = "ls"\n'
        'trigger = { type = "interval", seconds = 1 }\n',
        '[[tasks]]\nid = "a"\ncallable = "m:f"\ntrigger = { type = "interval", hourz = 1 }\n',
        '[[tasks]]\nid = "a"\ncallable = "m:f"\ntrigger = { type = "cron", hour = 1.5 }\n',
        '[[tasks]]\nid = "a"\ncallable = "m:f"\nshell = true\n'
        'trigger = { type = "interval", seconds = 1 }\n',
        '[[tasks]]\nid = "a"\ncommand = "ls"\nargs = [1]\n'
        'trigger = { type = "interval", seconds = 1 }\n',
        '[[tasks]]\nid = "a"\ncallable = "m:f"\n'
        'trigger = { type = "or", triggers = [{ type = "date", when = 1 }] }\n',
    ],
)
def test_the_schema_refuses_what_the_loader_refuses(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert not validator().is_valid(as_json(path))


def _properties(definition: dict[str, Any]) -> set[str]:
    return set(definition["properties"])


def test_the_schemas_keys_are_the_loaders() -> None:
    document = schema()
    assert _properties(document) == set(_spec._TOP_KEYS)
    assert _properties(document["properties"]["asyncz"]) == set(_spec._ASYNCZ_KEYS)
    assert _properties(document["properties"]["task_defaults"]) == set(_spec._POLICY_KEYS)
    assert _properties(document["$defs"]["task"]) == set(_spec._TASK_KEYS)


def test_the_schemas_triggers_are_the_registered_trigger_plugins() -> None:
    """Every trigger asyncz registers is described, with exactly its class's parameters: each
    either in the schema or declared there as not writable in TOML (x-asyncz-not-in-files)."""
    registry = default_registry()
    ours = {p.alias for p in registry.providers("trigger") if p.distribution == "asyncz"}
    described = schema()["$defs"]["triggers"]
    assert set(described) == ours
    dispatched = {
        rule["if"]["properties"]["type"]["const"] for rule in schema()["$defs"]["trigger"]["allOf"]
    }
    assert dispatched == ours
    for alias in sorted(ours):
        cls = registry.resolve("trigger", alias)
        parameters = {
            name
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self"
            and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        }
        if hasattr(cls, "from_crontab"):
            parameters.add("crontab")  # the loader's way to call from_crontab
        definition = described[alias]
        options = _properties(definition) - {"type"}
        not_in_files = set(definition.get("x-asyncz-not-in-files", {}))
        assert options | not_in_files == parameters, alias
        assert not options & not_in_files, alias
        assert definition["properties"]["type"] == {"const": alias}


def test_the_example_service_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """examples/tasks.toml on a memory store: its interval task prints within a few seconds."""
    spec = load_tasks_file(ROOT / "examples" / "tasks.toml")

    async def main() -> None:
        scheduler = spec.create_scheduler(stores={"default": {"type": "memory"}})
        scheduler.start()
        try:
            report = spec.apply(scheduler)
            assert report.added == [task.id for task in spec.tasks]
            for _ in range(200):
                if "example-service: alive" in capsys.readouterr().out:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("the heartbeat task printed nothing within 10 s")
        finally:
            scheduler.shutdown()

    asyncio.run(main())
