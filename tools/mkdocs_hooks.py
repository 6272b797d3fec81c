"""mkdocs hooks of the documentation site (mkdocs.yml: ``hooks``).

Before each build the pictures drawn from the code's real output are made again, into
``docs/images/generated/`` (git-ignored): the DST timeline from the real cron trigger
(``docs/examples/triggers/dst_timeline.py``). A picture is rewritten only when its bytes
change, so ``mkdocs serve`` does not rebuild in a loop.

The API reference is read from docstrings by griffe (mkdocstrings). Some docstrings document
several parameters in one field (``:param hour, minute, second: ...``) or document the options
a ``**kwargs`` takes; griffe's Sphinx parser warns about those. They render correctly, so they
are logged as INFO (and counted) instead of failing ``--strict``; every other warning, griffe's
included, still fails the build.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "docs" / "images" / "generated"
#: picture -> the example script that draws it (given the output path as its argument)
PICTURES = {"dst-timeline.png": ROOT / "docs" / "examples" / "triggers" / "dst_timeline.py"}


#: griffe's complaints about docstring fields that render correctly (see the module docstring)
DOCSTRING_STYLE = re.compile(r"Failed to parse field directive|No matching parameter for")
_downgraded: list[str] = []


class _DocstringStyle(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and DOCSTRING_STYLE.search(record.getMessage()):
            record.levelno, record.levelname = logging.INFO, "INFO"
            _downgraded.append(record.getMessage())
        return True


def on_startup(**kwargs: Any) -> None:
    logging.getLogger("mkdocs.plugins.griffe").addFilter(_DocstringStyle())


def on_post_build(config: Any, **kwargs: Any) -> None:
    if _downgraded:
        logging.getLogger("mkdocs.hooks").info(
            "%d docstring field(s) written in a style griffe does not parse (logged above as INFO)",
            len(_downgraded),
        )
        _downgraded.clear()


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
