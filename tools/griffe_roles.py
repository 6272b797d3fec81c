"""A griffe extension of the documentation site (mkdocs.yml: the python handler's
``extensions``): the Sphinx roles of asyncz's docstrings become code spans in the API reference.

The docstrings keep the roles used throughout the code (``:class:`~asyncz.stores.BaseStore```,
``:meth:`start```, ``:data:`EVENT_ALL```, ...). mkdocstrings renders docstrings as Markdown,
where a role would show as raw text, so before they are parsed each role becomes an optional
cross-reference of mkdocs-autorefs whose title is a code span: a link when the object is on a
page of the site, the plain code span otherwise (never a warning). A role's title follows
Sphinx: the last component with ``~``, the text before ``<target>`` with an explicit title,
else the name as written. Names without a dot are looked up from the documented object first.

``tools/mkdocs_hooks.py`` fails the build when a role is left raw on a page anyway.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

#: a Sphinx Python-domain role: :class:`X`, :py:meth:`~a.b.c`, :func:`title <a.b>`, ...
ROLE = re.compile(
    r":(?:py:)?(?P<role>class|meth|func|data|const|attr|mod|exc|obj|type)"
    r":`(?P<body>[^`]+)`"
)


def convert(text: str, resolve: Any = None) -> str:
    """``text`` with every role replaced by an optional autorefs cross-reference (a code span
    when it does not resolve). ``resolve(name)`` gives a dotless name's full path, or raises."""

    def replace(match: re.Match[str]) -> str:
        body = match["body"].strip()
        explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>", body)
        if explicit:
            title, target = explicit["title"], explicit["target"]
        else:
            target = body.lstrip("~!")
            title = target.rsplit(".", 1)[-1] if body.startswith("~") else target
        identifier = target.lstrip("~!.").removesuffix("()")
        if "." not in identifier and resolve is not None:
            try:
                identifier = resolve(identifier)
            except Exception:
                pass  # unknown here: left to autorefs, as an optional reference
        return (
            f'<autoref identifier="{html.escape(identifier)}" optional>'
            f"<code>{html.escape(title)}</code></autoref>"
        )

    return ROLE.sub(replace, text)


class SphinxRoles(griffe.Extension):
    """Converts the roles of every docstring once the package is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is None or ":" not in docstring.value:
            return
        scope = obj if obj.is_class or obj.is_module else obj.parent
        resolve = scope.resolve if scope is not None else None
        docstring.value = convert(docstring.value, resolve)
