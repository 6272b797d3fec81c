"""Three processes on one PostgreSQL store: each fire time of the task runs once, on one of them.

Starts node.py three times, lets them run four seconds, and counts who ran what."""

import collections
import os
import subprocess
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).parent
env = {**os.environ, "TABLE": f"docs_cluster_{uuid.uuid4().hex[:8]}"}
nodes = [
    subprocess.Popen(
        [sys.executable, str(HERE / "node.py"), "4"], stdout=subprocess.PIPE, text=True, env=env
    )
    for _ in range(3)
]
outputs = [node.communicate(timeout=60)[0].split() for node in nodes]
runs = collections.Counter(line for out in outputs for line in out if line != "ran")
print("fire times run:", len(runs) >= 6)
print("each exactly once:", set(runs.values()) == {1})
print("runs per node add up:", sum(out.count("ran") for out in outputs) == len(runs))

# Tidy up the example's table.
import sqlalchemy  # noqa: E402

engine = sqlalchemy.create_engine(
    os.environ.get("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
)
with engine.begin() as connection:
    for table in (env["TABLE"], *(f"{env['TABLE']}_{s}" for s in ("version", "runs", "instances"))):
        connection.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {table}"))
