"""How the process pool starts its workers, and the waits that must stay bounded.

Scripts without ``if __name__ == "__main__":`` run as real programs here: a spawned worker
imports the main script again, so no test inside pytest's own process can show it. Every
subprocess has a deadline, and each script prints what it saw for the test to check."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path
from typing import Any

import pytest

from asyncz.events import TASK_ERROR, TASK_EXECUTED, TASK_MISSED
from asyncz.executors import ProcessPoolExecutor, WorkerProcessDied
from asyncz.plugins.executors import processpool
from tests.plugins.executors import jobs
from tests.plugins.executors.harness import Harness

GUARD = 'if __name__ == "__main__":'
needs_fork = pytest.mark.skipif(not processpool.can_fork(), reason="this platform cannot fork")
needs_proc = pytest.mark.skipif(
    not os.path.exists("/proc/self/stat"), reason="CPU time of other processes is read from /proc"
)


def run_script(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "plain_script.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,  # a hang fails the test here instead of holding the suite
    )


def outcomes(stdout: str) -> dict[str, tuple[bool, str]]:
    """The ``outcome <task id> <executed> <value or exception>`` lines a script printed."""
    found = {}
    for line in stdout.splitlines():
        if line.startswith("outcome "):
            _, task_id, executed, value = line.split(" ", 3)
            found[task_id] = (executed == "True", value)
    return found


def printed(stdout: str, name: str) -> str:
    (value,) = [line[len(name) :].strip() for line in stdout.splitlines() if line.startswith(name)]
    return value


# -- choosing the start method ------------------------------------------------------------------


def fake_main(monkeypatch: pytest.MonkeyPatch, file: str | None, spec_name: str | None) -> None:
    main = types.ModuleType("__main__")
    if file is not None:
        main.__file__ = file
    main.__spec__ = None if spec_name is None else types.SimpleNamespace(name=spec_name)  # type: ignore[assignment]
    monkeypatch.setitem(sys.modules, "__main__", main)


@pytest.mark.parametrize(
    ("file", "spec_name", "reimported"),
    [
        ("/srv/app.py", None, "/srv/app.py"),  # python app.py, or a console script
        ("/srv/pkg/app.py", "pkg.app", "/srv/pkg/app.py"),  # python -m pkg.app
        ("/srv/pkg/__main__.py", "pkg.__main__", None),  # python -m pkg
        (None, None, None),  # python -c, an interactive session
    ],
    ids=["script", "dash-m-module", "dash-m-package", "no-file"],
)
def test_a_main_module_spawn_would_import_again_is_recognised(
    monkeypatch: pytest.MonkeyPatch, file: str | None, spec_name: str | None, reimported: str | None
) -> None:
    fake_main(monkeypatch, file, spec_name)
    assert processpool.reimported_main() == reimported


def test_the_start_method_follows_the_main_module_and_the_platform(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_main(monkeypatch, "/srv/app.py", None)
    monkeypatch.setattr(processpool, "can_fork", lambda: True)
    assert processpool.choose_start_method() == processpool.FORK_HELPER
    # Given explicitly, a start method is used as it is.
    assert processpool.choose_start_method("spawn") == "spawn"
    assert processpool.choose_start_method(multiprocessing.get_context("spawn")) == "spawn"
    assert ProcessPoolExecutor(pool_kwargs={"mp_context": "spawn"}).start_method == "spawn"
    assert ProcessPoolExecutor().start_method == processpool.FORK_HELPER
    monkeypatch.setattr(processpool, "can_fork", lambda: False)
    assert processpool.choose_start_method() == "spawn"
    monkeypatch.setattr(processpool, "can_fork", lambda: True)
    fake_main(monkeypatch, None, None)
    assert processpool.choose_start_method() == "spawn"


def test_the_timeouts_are_validated() -> None:
    for bad in (0, -1, "5", True):
        with pytest.raises(ValueError, match="start_timeout must be a number of seconds > 0"):
            ProcessPoolExecutor(start_timeout=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"answer_timeout .* or None"):
            ProcessPoolExecutor(answer_timeout=bad)  # type: ignore[arg-type]
    executor = ProcessPoolExecutor(start_timeout=5, answer_timeout=None)
    assert (executor.start_timeout, executor.answer_timeout) == (5.0, None)


# -- scripts without a main guard ---------------------------------------------------------------

GUARDLESS = """\
    import os
    import sys
    import threading

    from asyncz.events import TASK_ERROR, TASK_EXECUTED
    from asyncz.plugins.executors import processpool
    from asyncz.schedulers import AsyncIOScheduler

    print("script body runs in", os.getpid(), flush=True)
    options = {"type": "processpool", "max_workers": 1}
    if sys.argv[1] == "no-fork":
        processpool.can_fork = lambda: False  # as on a platform that cannot fork
    elif sys.argv[1] != "default":
        options["pool_kwargs"] = {"mp_context": sys.argv[1]}


    def double(x):
        return 2 * x


    seen = []
    all_seen = threading.Event()


    def listener(event):
        seen.append(event)
        if len(seen) == 3:
            all_seen.set()


    scheduler = AsyncIOScheduler(executors={"default": options})
    scheduler.add_listener(listener, TASK_EXECUTED | TASK_ERROR)
    scheduler.add_task(double, args=[21], id="a")
    scheduler.add_task(double, args=[1], id="b")
    scheduler.start()


    def defined_after_start():
        return "too late?"


    scheduler.add_task(defined_after_start, id="late")
    print("all outcomes", all_seen.wait(30), flush=True)
    scheduler.shutdown(wait=True)
    print("start method", scheduler.lookup_executor("default").start_method)
    for event in seen:
        value = event.return_value if event.code == TASK_EXECUTED else event.exception
        print("outcome", event.task_id, event.code == TASK_EXECUTED, repr(value))
"""


@needs_fork
def test_a_script_without_main_guard_runs_where_workers_can_be_forked(tmp_path: Path) -> None:
    done = run_script(tmp_path, GUARDLESS, "default")
    assert done.returncode == 0, done.stderr
    assert printed(done.stdout, "start method") == processpool.FORK_HELPER
    assert printed(done.stdout, "all outcomes") == "True"
    # The script ran once: no worker imported it again.
    assert done.stdout.count("script body runs in") == 1
    found = outcomes(done.stdout)
    assert found["a"] == (True, "42") and found["b"] == (True, "2")
    # The workers are copies of the program as it was at start(): a later function is missing,
    # and the error says why.
    executed, error = found["late"]
    assert not executed and "defined_after_start" in error
    assert "forked from a copy of the program made when the scheduler started" in error


@pytest.mark.parametrize(
    "method",
    ["no-fork", "spawn", "forkserver"],
    ids=["default-without-fork", "spawn", "forkserver"],
)
def test_a_script_without_main_guard_fails_at_once_when_workers_import_it(
    tmp_path: Path, method: str
) -> None:
    if method not in ("no-fork", *multiprocessing.get_all_start_methods()):
        pytest.skip(f"no {method} here")
    started = time.monotonic()
    done = run_script(tmp_path, GUARDLESS, method)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30
    assert printed(done.stdout, "start method") == ("spawn" if method == "no-fork" else method)
    assert printed(done.stdout, "all outcomes") == "True"
    # The worker that imported the script stopped before starting a scheduler, saying why...
    assert done.stderr.count("This process stops here") == 1
    assert f"keep the code that starts the scheduler under `{GUARD}`" in done.stderr
    # ...and no other worker was tried: every run, the later ones too, failed with the reason.
    found = outcomes(done.stdout)
    assert set(found) == {"a", "b", "late"}
    for executed, error in found.values():
        assert not executed and error.startswith("WorkerProcessDied(")
        assert "cannot start workers" in error and GUARD in error
        assert "plain_script.py again" in error


GUARDED_BOUNDS = """\
    import os
    import signal
    import sys
    import threading
    import time

    from asyncz.events import TASK_ERROR, TASK_EXECUTED, TASK_SUBMITTED
    from asyncz.schedulers import AsyncIOScheduler


    def freeze():
        os.kill(os.getpid(), signal.SIGSTOP)  # alive, but answers nothing ever again


    def main():
        case, method = sys.argv[1], sys.argv[2]
        pool = {}
        if method != "default":
            pool["mp_context"] = method
        if case == "never-starts":
            pool.update(initializer=time.sleep, initargs=(3600,))
        options = {"type": "processpool", "max_workers": 1, "pool_kwargs": pool,
                   "start_timeout": 1, "answer_timeout": 1}
        submitted = threading.Event()
        seen = []
        scheduler = AsyncIOScheduler(executors={"default": options})
        scheduler.add_listener(lambda event: submitted.set(), TASK_SUBMITTED)
        scheduler.add_listener(seen.append, TASK_EXECUTED | TASK_ERROR)
        scheduler.add_task(freeze, id="t")
        scheduler.start()
        print("submitted", submitted.wait(30), flush=True)
        began = time.monotonic()
        scheduler.shutdown(wait=True)
        print("shutdown took", time.monotonic() - began)
        print("start method", scheduler.lookup_executor("default").start_method)
        for event in seen:
            value = event.return_value if event.code == TASK_EXECUTED else event.exception
            print("outcome", event.task_id, event.code == TASK_EXECUTED, repr(value))


    if __name__ == "__main__":
        main()
"""

METHODS = [
    pytest.param("default", marks=needs_fork, id="fork-helper"),
    pytest.param("spawn", id="spawn"),
]


@pytest.mark.parametrize("method", METHODS)
def test_shutdown_does_not_wait_for_a_worker_that_never_starts(tmp_path: Path, method: str) -> None:
    done = run_script(tmp_path, GUARDED_BOUNDS, "never-starts", method)
    assert done.returncode == 0, done.stderr
    assert printed(done.stdout, "submitted") == "True"
    assert float(printed(done.stdout, "shutdown took")) < 20
    assert "was not ready within 1 s (start_timeout); it is killed" in done.stderr
    executed, error = outcomes(done.stdout)["t"]
    assert not executed and error.startswith("WorkerProcessDied(")
    assert "could not start: it was not ready within 1 s" in error


@needs_proc
@pytest.mark.parametrize("method", METHODS)
def test_shutdown_does_not_wait_for_a_worker_that_stopped_answering(
    tmp_path: Path, method: str
) -> None:
    done = run_script(tmp_path, GUARDED_BOUNDS, "stops-answering", method)
    assert done.returncode == 0, done.stderr
    assert printed(done.stdout, "submitted") == "True"
    assert float(printed(done.stdout, "shutdown took")) < 20
    assert "has shown no sign of life for 1 s (answer_timeout); it is killed" in done.stderr
    executed, error = outcomes(done.stdout)["t"]
    assert not executed and error.startswith("WorkerProcessDied(")
    assert "no sign of life (no heartbeat, no CPU time) for 1 s, so it was killed" in error


# -- what counts as answering -------------------------------------------------------------------


def mute_heartbeat_then(how: str, seconds: float) -> str:
    """In a worker: stop the heartbeat, then sleep (no sign of life) or compute (CPU time)."""
    from asyncz.plugins.executors import _worker

    _worker._ALIVE = pickle.dumps(("muted",))  # type: ignore[attr-defined]
    deadline = time.monotonic() + seconds
    if how == "sleep":
        time.sleep(seconds)
    else:
        while time.monotonic() < deadline:
            pass
    return how


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_long_run_that_sends_heartbeats_is_left_alone() -> None:
    async def main() -> Any:
        async with Harness(ProcessPoolExecutor(max_workers=1, answer_timeout=0.5)) as h:
            return await h.outcome(h.run(jobs.sleeps, 2.0), timeout=20)

    done = run(main())
    assert done.code == TASK_EXECUTED and done.return_value == 2.0


@needs_proc
def test_a_silent_run_that_uses_cpu_time_is_left_alone_and_a_silent_idle_one_is_not() -> None:
    async def main() -> tuple[Any, Any]:
        async with Harness(ProcessPoolExecutor(max_workers=2, answer_timeout=1)) as h:
            computing = h.run(mute_heartbeat_then, "compute", 3.0)
            sleeping = h.run(mute_heartbeat_then, "sleep", 3.0)
            return await h.outcome(computing, 20), await h.outcome(sleeping, 20)

    computing, sleeping = run(main())
    assert computing.code == TASK_EXECUTED and computing.return_value == "compute"
    assert sleeping.code == TASK_ERROR and isinstance(sleeping.exception, WorkerProcessDied)
    assert "no sign of life" in str(sleeping.exception)


# -- workers that die while starting, the supervisor and the launcher failing -------------------


@pytest.mark.parametrize("method", ["spawn", pytest.param("fork-helper", marks=needs_fork)])
def test_a_worker_dying_while_it_starts_fails_a_waiting_run_and_shutdown_the_rest(
    monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    monkeypatch.setattr(processpool, "choose_start_method", lambda requested=None: method)
    executor = ProcessPoolExecutor(
        max_workers=1, pool_kwargs={"initializer": os._exit, "initargs": (3,)}
    )

    async def main() -> tuple[Any, list[Any]]:
        async with Harness(executor) as h:
            first = await h.outcome(h.run(jobs.add, 1, 1))
            waiting = [h.run(jobs.add, i, 1) for i in range(3)]
            # Shutting down: the next worker that dies while starting fails every waiting run
            # at once, instead of one per attempt.
            await asyncio.to_thread(h.scheduler.shutdown, True)
            return first, [await h.outcome(task) for task in waiting]

    first, rest = run(main())
    for failed in (first, *rest):
        assert failed.code == TASK_ERROR and isinstance(failed.exception, WorkerProcessDied)
        assert "ended with exit code 3 before it was ready" in str(failed.exception)
        assert failed.exception.exitcode == 3


@needs_fork
def test_a_fork_helper_that_died_is_replaced(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(
        processpool, "choose_start_method", lambda requested=None: processpool.FORK_HELPER
    )
    # One run per worker: every run needs a worker forked by the helper.
    executor = ProcessPoolExecutor(max_workers=1, pool_kwargs={"max_tasks_per_child": 1})

    async def main() -> list[Any]:
        async with Harness(executor) as h:
            before = await h.outcome(h.run(jobs.pid))
            helper = executor._supervisor.helper
            os.kill(helper.process.pid, signal.SIGKILL)
            await h.rec.wait_for(lambda: not helper.alive)
            after = [await h.outcome(h.run(jobs.pid)) for _ in range(2)]
            assert executor._supervisor.helper is not helper
            return [before, *after]

    outcomes = run(main())
    assert [e.code for e in outcomes] == [TASK_EXECUTED] * 3
    assert len({e.return_value for e in outcomes}) == 3
    assert "fork helper of process pool 'default' ended (signal SIGKILL)" in caplog.text


def test_runs_sent_after_the_supervisor_failed_are_reported_not_left_waiting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: Any) -> None:
        raise RuntimeError("supervisor bug")

    monkeypatch.setattr(processpool._Supervisor, "_dispatch", broken)

    async def main() -> Any:
        async with Harness(ProcessPoolExecutor(max_workers=1)) as h:
            executor = h.executor
            await h.rec.wait_for(lambda: executor._supervisor.closed)
            missed = await h.outcome(h.run(jobs.add, 1, 1))
            assert executor.running_count == 0  # nothing left for shutdown(wait=True) to wait on
            return missed

    missed = run(main())
    assert missed.code == TASK_MISSED
    assert "The process pool supervisor failed" in caplog.text


def test_a_run_the_supervisor_fails_on_while_starting_it_is_reported_not_lost(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The run was taken from the queue but is on no worker yet when the supervisor fails:
    # closing must report it and uncount it, or shutdown(wait=True) would wait for ever.
    def broken(self: Any, job: Any, worker: Any) -> None:
        raise RuntimeError("supervisor bug while starting a run")

    monkeypatch.setattr(processpool._Supervisor, "_start_run", broken)

    async def main() -> Any:
        async with Harness(ProcessPoolExecutor(max_workers=1)) as h:
            missed = await h.outcome(h.run(jobs.add, 1, 1))
            # Reported, then uncounted: nothing is left for shutdown(wait=True) to wait on.
            assert await asyncio.to_thread(h.executor.wait_idle, 10)
            return missed

    missed = run(main())
    assert missed.code == TASK_MISSED
    assert "The process pool supervisor failed" in caplog.text


@pytest.mark.parametrize("method", ["spawn", pytest.param("fork-helper", marks=needs_fork)])
def test_a_worker_that_cannot_be_started_fails_each_run_at_once(
    monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    def no_process(*args: Any) -> Any:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(processpool, "choose_start_method", lambda requested=None: method)
    monkeypatch.setattr(processpool._Supervisor, "_start_process", no_process)
    monkeypatch.setattr(processpool._ForkHelper, "fork", no_process)

    async def main() -> list[Any]:
        async with Harness(ProcessPoolExecutor(max_workers=2)) as h:
            tasks = [h.run(jobs.add, i, 1) for i in range(3)]
            return [await h.outcome(task) for task in tasks]

    for failed in run(main()):
        assert failed.code == TASK_ERROR and isinstance(failed.exception, WorkerProcessDied)
        assert "could not be started: OSError(24" in str(failed.exception)
