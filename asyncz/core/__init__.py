"""The kernel: protocols, hook specs, the plugin registry, Task, events, errors and the engine.

It depends on the standard library, pluggy, attrs, tzlocal and importlib-metadata only, and never
imports a plugin module by name: plugins are found through entry points.
"""
