"""Command tasks: run_command on real processes, and a command task run by a scheduler (its
output in the log, a failure recorded with the exit code and the end of stderr)."""

from __future__ import annotations

import asyncio
import logging
import pickle
import sys
from pathlib import Path

import pytest

from asyncz.events import TASK_ERROR, TASK_EXECUTED
from asyncz.tasksfile import CommandFailedError, load_tasks_file, run_command

PY = sys.executable


def test_output_goes_to_the_log_line_by_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "asyncz.tasksfile.command")
    code = "import sys; print('one'); print('two'); print('oops', file=sys.stderr)"
    assert run_command([PY, "-c", code], task_id="job") == 0
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "[job] stdout: one",
        "[job] stdout: two",
        "[job] stderr: oops",
        "[job] exited with code 0",
    ]


def test_a_non_zero_exit_fails_with_the_code_and_the_end_of_stderr() -> None:
    code = "import sys\nfor i in range(10): print('line', i, file=sys.stderr)\nsys.exit(3)"
    with pytest.raises(CommandFailedError) as caught:
        run_command([PY, "-c", code])
    error = caught.value
    assert error.returncode == 3
    assert error.stderr_tail == "\n".join(f"line {i}" for i in range(5, 10))
    assert "exited with code 3; stderr ends with:\nline 5\n" in str(error)
    # It survives the trip back from a process pool.
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.returncode, copy.stderr_tail, str(copy)) == (3, error.stderr_tail, str(error))


def test_no_shell_unless_asked(tmp_path: Path) -> None:
    out = tmp_path / "out"
    # Without a shell, '>' and '$HOME' are plain arguments.
    run_command(f"{PY} -c 'import sys; open(sys.argv[1], \"w\").write(sys.argv[2])' {out} '$HOME'")
    assert out.read_text() == "$HOME"
    run_command(f"echo $ASYNCZ_T > {out}", shell=True, env={"ASYNCZ_T": "from-env"})
    assert out.read_text() == "from-env\n"


def test_cwd_and_env(tmp_path: Path) -> None:
    code = "import os; open('here', 'w').write(os.environ['ASYNCZ_X'])"
    run_command([PY, "-c", code], cwd=str(tmp_path), env={"ASYNCZ_X": "1"})
    assert (tmp_path / "here").read_text() == "1"


def test_a_timeout_kills_the_process(tmp_path: Path) -> None:
    code = "import sys, time; print('started', file=sys.stderr, flush=True); time.sleep(60)"
    with pytest.raises(CommandFailedError) as caught:
        run_command([PY, "-c", code], timeout=0.5)
    assert caught.value.returncode is None
    assert "ran past its timeout of 0.5 s and was killed" in str(caught.value)


def test_a_command_that_cannot_start() -> None:
    with pytest.raises(CommandFailedError, match="could not be started"):
        run_command(["/nonexistent/program"])


def test_a_scheduler_runs_command_tasks_from_a_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "asyncz.tasksfile.command")
    (tmp_path / "fail.py").write_text(
        "import sys\nprint('bad input', file=sys.stderr)\nsys.exit(7)\n"
    )
    path = tmp_path / "tasks.toml"
    path.write_text(
        f"""
[stores.default]
type = "sqlalchemy"
database = "sqlite:///{tmp_path}/runs.db"

[[tasks]]
id = "hello"
command = ["{PY}", "-c", "print('hello from a command')"]
trigger = {{ type = "date" }}

[[tasks]]
id = "broken"
command = "{PY} fail.py"
cwd = "."
trigger = {{ type = "date" }}
"""
    )
    spec = load_tasks_file(path)

    async def main() -> tuple[list[object], list[object]]:
        done: list[object] = []
        finished = asyncio.Event()
        loop = asyncio.get_running_loop()

        def listener(event: object) -> None:
            done.append(event)
            if len(done) == 2:
                loop.call_soon_threadsafe(finished.set)

        scheduler = spec.create_scheduler()
        scheduler.add_listener(listener, TASK_EXECUTED | TASK_ERROR)
        scheduler.start()
        try:
            spec.apply(scheduler)
            await asyncio.wait_for(finished.wait(), 20)
            for _ in range(200):  # the outcome is recorded just after the event
                runs = scheduler.get_task_runs("broken")
                if runs and runs[0].status == "failed":
                    break
                await asyncio.sleep(0.05)
        finally:
            scheduler.shutdown()
        return done, runs

    done, runs = asyncio.run(main())
    (record,) = runs
    assert record.status == "failed"
    assert "exited with code 7" in record.error  # type: ignore[attr-defined]
    assert "bad input" in record.error  # type: ignore[attr-defined]
    events = {e.task_id: e for e in done}  # type: ignore[attr-defined]
    assert events["hello"].code == TASK_EXECUTED
    assert events["broken"].code == TASK_ERROR
    assert isinstance(events["broken"].exception, CommandFailedError)
    assert events["broken"].exception.returncode == 7
    assert "bad input" in str(events["broken"].exception)
    assert "[hello] stdout: hello from a command" in [r.getMessage() for r in caplog.records]
