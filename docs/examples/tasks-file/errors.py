"""A tasks file that is not valid stops before a scheduler is created, with one line that names
the file, the key path, the value and what would be valid."""

import tempfile
from pathlib import Path

from asyncz.tasksfile import TasksFileError, load_tasks_file

BAD = {
    "a misspelt trigger option": """
[[tasks]]
id = "t"
callable = "time:time"
trigger = { type = "interval", hourz = 1 }
""",
    "a value out of range": """
[[tasks]]
id = "t"
callable = "time:time"
trigger = { type = "cron", hour = 99 }
""",
    "a store plugin nobody registered": """
[stores.default]
type = "sqlalchemi"
""",
    "a callable that does not import": """
[[tasks]]
id = "t"
callable = "shop.jobz:sync"
trigger = { type = "interval", minutes = 5 }
""",
    "a program that is not on PATH": """
[[tasks]]
id = "t"
command = ["restik", "backup"]
trigger = { type = "interval", minutes = 5 }
""",
    "not TOML at all": "[stores",
}

folder = Path(tempfile.mkdtemp())
for what, text in BAD.items():
    path = folder / "tasks.toml"
    path.write_text(text)
    try:
        load_tasks_file(path)
    except TasksFileError as exc:  # a ValueError
        print(f"# {what}\n{str(exc).replace(str(folder) + '/', '')}")
