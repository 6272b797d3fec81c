"""The built site: the API reference shows no raw Sphinx roles of the docstrings.

The docstrings keep Sphinx roles (``:class:`~a.b.C```); ``tools/griffe_roles.py`` turns them
into code spans and cross-references when the site is built. This builds the site (as
``nox -s docs`` does, ``--strict``) and looks for any role left raw in its pages.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.docs.examples import ROOT

#: a role left raw: ``:class:`X``` rendered by Markdown as ``:class:<code>X</code>``
RAW_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|data|const|attr|mod|exc|obj|type):<code>")


def _griffe_roles() -> Any:
    spec = importlib.util.spec_from_file_location("griffe_roles", ROOT / "tools/griffe_roles.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_roles_become_code_spans() -> None:
    pytest.importorskip("griffe", reason="the docs extra: pip install -e '.[docs]'")
    convert = _griffe_roles().convert
    assert convert(":class:`~asyncz.stores.BaseStore`") == (
        '<autoref identifier="asyncz.stores.BaseStore" optional><code>BaseStore</code></autoref>'
    )
    assert "<code>asyncz.shapes</code>" in convert(":mod:`asyncz.shapes`")
    assert 'identifier="a.b.start"' in convert(":meth:`start() <a.b.start>`")
    assert "<code>start()</code>" in convert(":meth:`start() <a.b.start>`")
    assert 'identifier="x.Y.run"' in convert(":py:meth:`run`", lambda name: f"x.Y.{name}")
    converted = convert(":exc:`ValueError` and :data:`EVENT_ALL`")
    assert ":exc:" not in converted and ":data:" not in converted


def test_built_site_has_no_raw_roles(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pages = sorted(site.rglob("*.html"))
    assert any(p.parent.parent.name == "reference" for p in pages), "no API reference built"
    raw = [
        f"{page.relative_to(site)}: {match.group()}"
        for page in pages
        for match in RAW_ROLE.finditer(page.read_text())
    ]
    assert not raw, "\n".join(raw)
