"""mkdocs hooks of the documentation site (mkdocs.yml: ``hooks``).

Before each build the pictures drawn from the code's real output are made again, into
``docs/images/generated/`` (git-ignored): the DST timeline from the real cron trigger
(``docs/examples/triggers/dst_timeline.py``). A picture is rewritten only when its bytes
change, so ``mkdocs serve`` does not rebuild in a loop.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "docs" / "images" / "generated"
#: picture -> the example script that draws it (given the output path as its argument)
PICTURES = {"dst-timeline.png": ROOT / "docs" / "examples" / "triggers" / "dst_timeline.py"}


def on_pre_build(config: Any, **kwargs: Any) -> None:
    GENERATED.mkdir(parents=True, exist_ok=True)
    for name, script in PICTURES.items():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / name
            subprocess.run(
                [sys.executable, str(script), str(out)],
                check=True,
                capture_output=True,
                timeout=120,
            )
            target = GENERATED / name
            data = out.read_bytes()
            if not target.exists() or target.read_bytes() != data:
                target.write_bytes(data)
