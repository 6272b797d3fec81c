"""docs/executors-distributed.md, as written: one Celery worker and three asyncz nodes sharing
a Redis store; each fire time of the interval task is executed once, by the fleet."""

from __future__ import annotations

import collections
import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

from tests.plugins.executors.celery_fleet import ROOT, check_broker, unavailable

EXAMPLE = ROOT / "docs" / "examples" / "celery_fleet"
SECONDS = 6


def fleet_commands() -> tuple[list[str], list[str]]:
    """The worker's and a node's command, as the page shows them (``fleet.sh``)."""
    lines = [
        shlex.split(line.split("#")[0])
        for line in (EXAMPLE / "fleet.sh").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    (worker,) = [words for words in lines if words[0] == "celery"]
    (node,) = [words for words in lines if words[0] == "python"]
    assert worker[1:4] == ["-A", "fleet_celery", "worker"] and node[1:] == ["fleet_node.py"]
    return worker, node


def test_three_nodes_feed_one_fleet_and_each_fire_time_runs_once(tmp_path: Path) -> None:
    check_broker("rabbitmq")
    import redis

    store = os.environ.get("ASYNCZ_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(store)
    try:
        client.ping()
    except Exception as exc:
        unavailable(f"Redis at {store}", exc)
    token = uuid.uuid4().hex[:10]
    ledger = tmp_path / "ledger"
    # As a reader runs them: from the example's folder, no PYTHONPATH of ours.
    env = {
        **{name: value for name, value in os.environ.items() if name != "PYTHONPATH"},
        "FLEET_QUEUE": f"asyncz-doc-{token}",
        "FLEET_PREFIX": f"asyncz-doc-{token}.",
        "FLEET_STORE": store,
        "FLEET_BACKEND": store,
        "FLEET_LEDGER": str(ledger),
        "FLEET_SECONDS": str(SECONDS),
    }
    worker_command, node_command = fleet_commands()
    worker = subprocess.Popen(
        # As written, with this interpreter's celery, two processes and less chatter.
        [sys.executable, "-m", *worker_command, "-c", "2", "--without-gossip", "--without-mingle"],
        cwd=EXAMPLE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        nodes = [
            subprocess.Popen(
                [sys.executable, *node_command[1:]],
                cwd=EXAMPLE,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for _ in range(3)
        ]
        outputs = [node.communicate(timeout=120)[0] for node in nodes]
    finally:
        worker.terminate()
        worker.wait(30)
        keys = list(client.scan_iter(match=f"asyncz-doc-{token}.*"))
        if keys:
            client.delete(*keys)
    lines = [line.split() for output in outputs for line in output.splitlines()]
    assert lines and all(line[0] == "executed" for line in lines), outputs
    fire_times = collections.Counter(line[2] for line in lines)
    assert max(fire_times.values()) == 1, "a fire time was sent twice"
    assert len(ledger.read_text().splitlines()) == len(lines)  # executed once each
    # The nodes shared the work or one did it all; both are fine. At least a few ticks ran.
    assert len(lines) >= SECONDS // 2, outputs
