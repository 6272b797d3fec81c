"""``asyncz.triggers.combination``: the path Asyncz's API reference gives the ``and``/``or``
triggers (the same objects as :mod:`asyncz.triggers.combining`)."""

from asyncz.plugins.triggers.combining import (
    AndTrigger,
    BaseCombinationTrigger,
    OrTrigger,
    SearchHorizonError,
)

__all__ = ["AndTrigger", "BaseCombinationTrigger", "OrTrigger", "SearchHorizonError"]
