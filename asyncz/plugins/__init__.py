"""The built-in plugins. Each module is registered through the ``asyncz`` entry-point group in
``pyproject.toml``, exactly as a third-party plugin is; nothing here is imported by the kernel."""
