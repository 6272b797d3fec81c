"""mkdocs hooks of the documentation site (mkdocs.yml: ``hooks``).

Before each build the pictures drawn from the code's real output are made again, into
``docs/images/generated/`` (git-ignored): the DST timeline from the real cron trigger
(``docs/examples/triggers/dst_timeline.py``). A picture is rewritten only when its bytes
change, so ``mkdocs serve`` does not rebuild in a loop.

The API reference is read from docstrings by griffe (mkdocstrings), with the Sphinx roles of the
docstrings turned into code spans and cross-references by ``tools/griffe_roles.py``. Every
warning, griffe's about a docstring field it cannot parse included, fails ``--strict``; so does a
raw role (``:class:`X```) left on a built page.
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
log = logging.getLogger("mkdocs.hooks")
#: a Sphinx role as it shows when left raw in a docstring: ``:class:`X``` rendered as
#: ``:class:<code>X</code>`` (tests/docs looks for it in the built site too)
RAW_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|data|const|attr|mod|exc|obj|type):<code>")


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    """A raw Sphinx role on a page is a warning (and so fails ``--strict``)."""
    for match in RAW_ROLE.finditer(html):
        context = html[max(0, match.start() - 60) : match.end() + 60].replace("\n", " ")
        log.warning("%s: a raw docstring role: %s", page.file.src_uri, context)
    return html


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
