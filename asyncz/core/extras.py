"""Which asyncz extra installs which package: for errors that say how to fix a missing one.

Here: :func:`extra_for`, :func:`install_hint` and :func:`missing_dependency`. Used by the plugin
registry (an alias whose module cannot be imported), by plugins that import their driver late
(the Redis store), and by the ``asyncz plugins`` command.
"""

from __future__ import annotations

#: top-level module -> the extra that installs it
EXTRAS = {
    "sqlalchemy": "sqlalchemy",
    "psycopg": "postgres",
    "psycopg2": "postgres",
    "pymysql": "mysql",
    "MySQLdb": "mysql",
    "redis": "redis",
    "cryptography": "encryption",
    "sayer": "cli",
    "pydantic": "pydantic",
    "msgspec": "msgspec",
    "celery": "celery",
    "kombu": "celery",
    "dask": "dask",
    "distributed": "dask",
    "lilya": "dashboard",
    "jinja2": "dashboard",
}


def extra_for(module: str) -> str | None:
    """The asyncz extra that installs ``module`` (its top-level package), if one does."""
    return EXTRAS.get(module.split(".")[0])


def install_hint(module: str) -> str:
    """The command that installs ``module``: ``pip install "asyncz[extra]"`` when an extra has
    it, else ``pip install <package>``."""
    extra = extra_for(module)
    if extra is None:
        return f"pip install {module.split('.')[0]}"
    return f'pip install "asyncz[{extra}]"'


def missing_dependency(what: str, exc: ImportError) -> str:
    """A message for ``what`` failing to import: the missing module and how to install it."""
    name = exc.name or ""
    if not name:
        return f"{what} cannot be imported ({exc})"
    return f"{what} needs the {name!r} package, which is not installed; {install_hint(name)}"
