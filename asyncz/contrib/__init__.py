"""Optional add-ons built on asyncz's public API, each behind an extra of its own.

Here: :mod:`asyncz.contrib.dashboard` (``pip install 'asyncz[dashboard]'``). Nothing in the
kernel or the plugins imports this package.
"""
