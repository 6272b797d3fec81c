"""The dashboard's page handlers, one module per group of pages (tasks, overview, review,
login), all built on :class:`~asyncz.contrib.dashboard.controllers.base.Pages`."""
