"""A real third-party plugin distribution (tests/fixtures/asyncz-example-plugin), installed with
pip, used through its alias — and the ways plugins go wrong: blocked, broken, duplicated.

Each case runs in a fresh interpreter, because discovery happens once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import importlib_metadata
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "asyncz-example-plugin"


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    """Where the example plugin is installed: the test environment (nox installs it), or a
    target directory this fixture installs it into with pip."""
    try:
        importlib_metadata.distribution("asyncz-example-plugin")
        return None
    except importlib_metadata.PackageNotFoundError:
        pass
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(FIXTURE),
        ],
        check=True,
    )
    return str(target)


def fake_distribution(
    root: Path, name: str, version: str, entry_points: str, modules: dict[str, str]
) -> None:
    """Lay out an installed distribution by hand: a dist-info folder importlib finds."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[asyncz]\n{entry_points}\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


def run(code: str, paths: list[str | None], **env: str) -> subprocess.CompletedProcess[str]:
    python_path = [p for p in paths if p] + [str(ROOT)]
    environment = {k: v for k, v in os.environ.items() if k != "ASYNCZ_DISABLE_PLUGINS"}
    environment.update(env, PYTHONPATH=os.pathsep.join(python_path))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )


USE_ALIAS = """
    import asyncio, json
    from datetime import datetime, timedelta, timezone
    from asyncz.schedulers import AsyncIOScheduler
    from asyncz.events import TASK_EXECUTED

    ran = []

    def remind(who):
        return f"hello {who}"

    async def main():
        now = datetime.now(timezone.utc)
        scheduler = AsyncIOScheduler()
        done = asyncio.Event()
        def listener(event):
            ran.append(event.return_value)
            if len(ran) == 2:
                done.set()
        scheduler.add_listener(listener, TASK_EXECUTED)
        soon = [now + timedelta(seconds=0.2), now + timedelta(seconds=0.1)]
        task = scheduler.add_task(remind, "at_times", args=["ada"], id="r", times=soon)
        scheduler.start()
        await asyncio.wait_for(done.wait(), 5)
        scheduler.shutdown()
        print(json.dumps({"ran": ran, "trigger": type(task.trigger).__module__,
                          "left": [t.id for t in scheduler.get_tasks()]}))

    asyncio.run(main())
"""


def test_third_party_trigger_alias_works(plugin_path: str | None) -> None:
    result = run(USE_ALIAS, [plugin_path])
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome == {
        "ran": ["hello ada", "hello ada"],
        "trigger": "asyncz_example_plugin",
        "left": [],
    }


def test_disabled_plugin_is_blocked(plugin_path: str | None) -> None:
    result = run(USE_ALIAS, [plugin_path], ASYNCZ_DISABLE_PLUGINS="example")
    assert result.returncode != 0
    assert "UnknownAliasError" in result.stderr
    assert "'at_times'" in result.stderr
    assert "blocked by ASYNCZ_DISABLE_PLUGINS: 'example'" in result.stderr


def test_broken_plugin_warns_and_shows_up_in_later_errors(
    plugin_path: str | None, tmp_path: Path
) -> None:
    fake_distribution(
        tmp_path,
        "asyncz-broken",
        "0.1",
        "broken = asyncz_broken_plugin",
        {"asyncz_broken_plugin": "import a_dependency_that_is_not_installed\n"},
    )
    code = """
        import warnings
        from asyncz.schedulers import AsyncIOScheduler
        from asyncz.exceptions import UnknownAliasError
        scheduler = AsyncIOScheduler()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            task = scheduler.add_task(print, "interval", seconds=5)  # still works
        print("WARNING:", caught[0].message)
        try:
            scheduler.add_task(print, "at_time", times=["2030-01-01T00:00:00+00:00"])
        except UnknownAliasError as exc:
            print("ERROR:", exc)
    """
    result = run(code, [plugin_path, str(tmp_path)])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "WARNING: asyncz plugin 'broken' from asyncz-broken 0.1: ModuleNotFoundError" in out
    assert "ERROR: No trigger plugin is registered under the alias 'at_time'." in out
    assert "Did you mean 'at_times'?" in out
    assert "asyncz-example-plugin 1.0.0" in out
    assert (
        "'broken' from asyncz-broken 0.1: ModuleNotFoundError: No module named "
        "'a_dependency_that_is_not_installed'" in out.split("ERROR:")[1]
    )


def test_two_plugins_claiming_one_alias_is_an_error_naming_both(
    plugin_path: str | None, tmp_path: Path
) -> None:
    fake_distribution(
        tmp_path,
        "asyncz-copycat",
        "0.2",
        "copycat = asyncz_copycat",
        {
            "asyncz_copycat": """
                          import asyncz
                          @asyncz.hookimpl
                          def asyncz_register_triggers(register):
                              register("at_times", "asyncz_copycat:Nothing")
                      """
        },
    )
    code = """
        from asyncz.schedulers import AsyncIOScheduler
        AsyncIOScheduler().add_task(print, "interval", seconds=1)
    """
    result = run(code, [plugin_path, str(tmp_path)])
    assert result.returncode != 0
    assert "DuplicateAliasError" in result.stderr
    assert "asyncz-example-plugin 1.0.0" in result.stderr
    assert "asyncz-copycat 0.2" in result.stderr
    assert "'at_times'" in result.stderr


def test_cli_lists_third_party_plugins(plugin_path: str | None) -> None:
    code = "from asyncz.cli import main; raise SystemExit(main(['plugins']))"
    result = run(code, [plugin_path])
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["trigger", "at_times", "asyncz-example-plugin", "1.0.0", "example"] in rows
    assert ["store", "memory", "asyncz", "0.1.0", "memory-store"] in rows
    code = "from asyncz.cli import main; raise SystemExit(main(['plugins', '--json']))"
    document = json.loads(run(code, [plugin_path]).stdout)
    assert {
        "kind": "trigger",
        "alias": "at_times",
        "plugin": "example",
        "distribution": "asyncz-example-plugin",
        "version": "1.0.0",
        "target": "asyncz_example_plugin:AtTimesTrigger",
    } in document["plugins"]
    assert document["failed"] == [] and document["blocked"] == []
