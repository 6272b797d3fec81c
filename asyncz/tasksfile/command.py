"""Shell-command tasks: the callable a tasks file's ``command = ...`` task runs.

A task written as a command is stored as an ordinary task whose callable is
:func:`run_command` (reference ``"asyncz.tasksfile.command:run_command"``) and whose keyword
arguments are the command and how to run it, so every store, executor and scheduler sharing a
store runs it the same way. The command runs without a shell unless the file asks for one
(``shell = true``); its output is written to the ``asyncz.tasksfile.command`` log, one line per
record; a non-zero exit fails the run with :class:`CommandFailedError`, whose message carries the
exit code and the end of the standard error.

Not here: reading the tasks file (:mod:`asyncz.tasksfile`).
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence

__all__ = ["COMMAND_REFERENCE", "CommandFailedError", "run_command"]

#: The reference under which command tasks are stored.
COMMAND_REFERENCE = "asyncz.tasksfile.command:run_command"

logger = logging.getLogger("asyncz.tasksfile.command")

#: Lines of standard error quoted in the error of a failed run (the whole output is logged).
_TAIL_LINES = 5
_TAIL_CHARS = 800
#: Lines of each stream written to the log per run; the rest are counted, not logged.
_LOGGED_LINES = 1000


class CommandFailedError(RuntimeError):
    """A command task's process exited with a non-zero code, or ran past its timeout, or could
    not be started.

    :var command: the command as it was run (a list of arguments, or the shell string)
    :var returncode: the exit code (negative: killed by that signal); ``None`` when the process
        did not end by itself (timeout) or never started
    :var stderr_tail: the last lines of its standard error
    """

    def __init__(
        self, command: str | Sequence[str], returncode: int | None, stderr_tail: str, reason: str
    ) -> None:
        # Every attribute is in args, so the exception pickles (the process pool sends it back).
        super().__init__(command, returncode, stderr_tail, reason)
        self.command = command
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.reason = reason

    def __str__(self) -> str:
        shown = self.command if isinstance(self.command, str) else shlex.join(self.command)
        message = f"command {shown!r} {self.reason}"
        if self.stderr_tail:
            message += f"; stderr ends with:\n{self.stderr_tail}"
        return message


def _tail(text: str) -> str:
    lines = text.rstrip().splitlines()[-_TAIL_LINES:]
    tail = "\n".join(lines)
    return tail if len(tail) <= _TAIL_CHARS else "..." + tail[-_TAIL_CHARS:]


def _log_output(label: str, stream: str, text: str | bytes | None) -> None:
    if not text:
        return
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = text.rstrip("\n").splitlines()
    for line in lines[:_LOGGED_LINES]:
        logger.info("%s %s: %s", label, stream, line)
    if len(lines) > _LOGGED_LINES:
        logger.info("%s %s: (%d more lines not logged)", label, stream, len(lines) - _LOGGED_LINES)


def run_command(
    command: str | Sequence[str],
    *,
    shell: bool = False,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    task_id: str | None = None,
) -> int:
    """Run ``command`` to its end and return its exit code (always 0: any other raises).

    :param command: a list of arguments (run as is), or a string: split like a POSIX shell
        would (``shlex.split``) and run without a shell, or given to ``/bin/sh`` with
        ``shell=True``
    :param cwd: the working directory (default: the scheduler's)
    :param env: variables added to (or replacing some of) the scheduler's environment
    :param timeout: seconds after which the process is killed and the run fails
    :param task_id: names the task in the log lines of its output
    :raises CommandFailedError: non-zero exit, timeout, or a command that cannot be started
    """
    if shell:
        if not isinstance(command, str):
            raise TypeError("a command run with shell=True must be a string")
        to_run: str | list[str] = command
    else:
        to_run = shlex.split(command) if isinstance(command, str) else list(command)
        if not to_run:
            raise ValueError("the command is empty")
    label = (
        f"[{task_id}]"
        if task_id
        else f"[{command if isinstance(command, str) else shlex.join(command)}]"
    )
    environment = {**os.environ, **env} if env else None
    try:
        completed = subprocess.run(
            to_run,
            shell=shell,
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            text=True,
            errors="replace",
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        # subprocess.run has killed the process (and waited for it) before raising.
        _log_output(label, "stdout", exc.stdout)
        _log_output(label, "stderr", exc.stderr)
        stderr = (
            exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        )
        raise CommandFailedError(
            to_run,
            None,
            _tail(stderr or ""),
            f"ran past its timeout of {timeout:g} s and was killed",
        ) from None
    except OSError as exc:  # not found, not executable, bad cwd
        raise CommandFailedError(to_run, None, "", f"could not be started: {exc}") from None
    _log_output(label, "stdout", completed.stdout)
    _log_output(label, "stderr", completed.stderr)
    if completed.returncode != 0:
        code = completed.returncode
        reason = f"exited with code {code}" if code > 0 else f"was killed by signal {-code}"
        raise CommandFailedError(to_run, code, _tail(completed.stderr or ""), reason)
    logger.info("%s exited with code 0", label)
    return 0
