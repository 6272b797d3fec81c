"""The Celery app of the fleet: `celery -A fleet_celery worker` on each worker machine."""

import os

from celery import Celery

from asyncz.plugins.executors.celery_worker import install

app = Celery(
    "fleet",
    # Imported by every worker at start, from the folder the worker runs in: the generic task
    # then finds the callables the messages name.
    include=["fleet_jobs"],
    broker=os.environ.get("FLEET_BROKER", "amqp://guest:guest@127.0.0.1:5672//"),
    backend=os.environ.get("FLEET_BACKEND", "redis://127.0.0.1:6379/0"),
)
app.conf.task_default_queue = os.environ.get("FLEET_QUEUE", "asyncz")
app.conf.result_expires = 3600
# The generic task runs only what is in these modules.
install(app, allowed_modules=["fleet_jobs"])
