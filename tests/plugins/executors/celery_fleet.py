"""Real Celery workers for the ``celery`` executor's tests, and the app they run.

A :class:`Fleet` starts ``celery -A tests.plugins.executors.celery_fleet:worker_app worker``
processes on a queue of its own (so test sessions running at the same time never take each
other's messages), waits until each answers a ping, and stops them (or kills one, for the tests
of lost workers). Each worker logs to a file the tests read.

Brokers are found through ``ASYNCZ_TEST_RABBITMQ_URL`` (default
``amqp://guest:guest@127.0.0.1:5672//``) and ``ASYNCZ_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``). A broker that cannot be reached skips its tests with the reason,
except under ``CI=true``, where it fails them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
RABBITMQ_URL = os.environ.get("ASYNCZ_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("ASYNCZ_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: broker name -> (broker url, result backend url)
BROKERS = {
    "rabbitmq": (RABBITMQ_URL, "rpc://"),
    "redis": (REDIS_URL, REDIS_URL),
}
ALLOWED = ["tests.plugins.executors.jobs", "tests.plugins.executors.celery_fleet"]


def make_app(broker: str, backend: str, queue: str, acks_late: bool = False) -> Any:
    """The app of both sides: the workers run it, the executor sends with it."""
    from celery import Celery

    from asyncz.plugins.executors.celery_worker import install

    app = Celery("asyncz-test-fleet", broker=broker, backend=backend)
    app.conf.update(
        task_default_queue=queue,
        task_acks_late=acks_late,
        result_expires=600,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2,
        worker_prefetch_multiplier=1 if acks_late else 4,
        # Broker or backend down: fail within a second, not after Celery's long retries.
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
        redis_socket_connect_timeout=2,
        result_backend_transport_options={"retry_policy": {"max_retries": 1}},
    )
    install(app, allowed_modules=ALLOWED)
    return app


def __getattr__(name: str) -> Any:
    # The worker's app, made from its environment when `celery -A` asks for it.
    if name == "worker_app":
        app = make_app(
            os.environ["ASYNCZ_FLEET_BROKER"],
            os.environ["ASYNCZ_FLEET_BACKEND"],
            os.environ["ASYNCZ_FLEET_QUEUE"],
            os.environ.get("ASYNCZ_FLEET_ACKS_LATE") == "1",
        )
        globals()["worker_app"] = app
        return app
    raise AttributeError(name)


def unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable ({type(exc).__name__}: {exc})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; under CI=true the real server is required")
    pytest.skip(message)


def check_broker(name: str) -> None:
    broker, _ = BROKERS[name]
    pytest.importorskip("celery")
    from kombu import Connection

    try:
        with Connection(broker, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        unavailable(f"{name} at {broker}", exc)


class Fleet:
    """Celery worker processes on one broker, on a queue of their own."""

    def __init__(
        self,
        broker_name: str,
        log_dir: Path,
        workers: int = 1,
        concurrency: int = 2,
        acks_late: bool = False,
        pool: str = "prefork",
    ) -> None:
        self.broker_name = broker_name
        self.broker, self.backend = BROKERS[broker_name]
        self.queue = f"asyncz-test-{uuid.uuid4().hex[:10]}"
        self.acks_late = acks_late
        self.app = make_app(self.broker, self.backend, self.queue, acks_late)
        self.log_dir = log_dir
        self.concurrency = concurrency
        self.pool = pool
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        for index in range(workers):
            self.add_worker(f"w{index}")

    def add_worker(self, name: str) -> str:
        host = f"{name}-{self.queue}@localhost"
        log = self.log_dir / f"{name}-{self.queue}.log"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "ASYNCZ_FLEET_BROKER": self.broker,
            "ASYNCZ_FLEET_BACKEND": self.backend,
            "ASYNCZ_FLEET_QUEUE": self.queue,
            "ASYNCZ_FLEET_ACKS_LATE": "1" if self.acks_late else "0",
        }
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.plugins.executors.celery_fleet:worker_app",
            "worker",
            "-P",
            self.pool,
            "-c",
            str(self.concurrency),
            "-Q",
            self.queue,
            "-n",
            host,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "INFO",
            "--logfile",
            str(log),
        ]
        self.processes[host] = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its pool children die with it when killed as a group
        )
        self.logs[host] = log
        self.wait_ready([host])
        return host

    def wait_ready(self, hosts: list[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        waiting = set(hosts)
        while waiting:
            for host in list(waiting):
                if self.processes[host].poll() is not None:
                    raise RuntimeError(f"Celery worker {host} exited: {self.log(host)[-3000:]}")
            replies = self.app.control.ping(destination=sorted(waiting), timeout=0.5)
            for reply in replies:
                waiting -= set(reply)
            if waiting and time.monotonic() > deadline:
                raise RuntimeError(f"Celery workers {sorted(waiting)} did not answer in time")

    def log(self, host: str | None = None) -> str:
        hosts = [host] if host else list(self.logs)
        return "".join(
            self.logs[h].read_text(errors="replace") for h in hosts if self.logs[h].exists()
        )

    def kill(self, host: str) -> None:
        """SIGKILL the worker and its pool processes: a machine lost, nothing said."""
        process = self.processes[host]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)

    def executor(self, **options: Any) -> Any:
        from asyncz.plugins.executors.celery import CeleryExecutor

        options.setdefault("queue", self.queue)
        options.setdefault("worker_check_interval", 0.5)
        options.setdefault("worker_lost_after", 3.0)
        options.setdefault("poll_interval", 1.0)
        return CeleryExecutor(self.app, **options)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        self._remove_queue()

    def _remove_queue(self) -> None:
        try:
            with self.app.connection_for_write() as conn:
                conn.default_channel.queue_delete(self.queue)
        except Exception:  # the queue is the test's own: leaving it behind harms nobody
            pass


def start_fleet(broker_name: str, log_dir: Path, **options: Any) -> Iterator[Fleet]:
    check_broker(broker_name)
    fleet = Fleet(broker_name, log_dir, **options)
    try:
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture(scope="session")
def celery_rabbitmq_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    yield from start_fleet("rabbitmq", tmp_path_factory.mktemp("celery-rabbitmq"))


@pytest.fixture(scope="session")
def celery_redis_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    yield from start_fleet("redis", tmp_path_factory.mktemp("celery-redis"))


# -- callables only these tests send --------------------------------------------------------


def pid_and_arg(value: Any) -> list[Any]:
    return [os.getpid(), value]


def count_into(path: str, tag: str) -> str:
    """Append ``tag`` to a file: how the tests count executions across worker processes."""
    with open(path, "a") as f:
        f.write(tag + "\n")
    return tag


def sleep_then_count(path: str, tag: str, seconds: float) -> str:
    time.sleep(seconds)
    return count_into(path, tag)
