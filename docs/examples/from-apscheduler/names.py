"""APScheduler 3 names and their asyncz counterparts; each asyncz name is checked to exist."""

import asyncz.events
import asyncz.exceptions
from asyncz.schedulers import AsyncIOScheduler

SCHEDULER = {  # APScheduler 3 method or argument -> asyncz
    "add_job": "add_task",
    "get_job": "get_task",
    "get_jobs": "get_tasks",
    "modify_job": "update_task",
    "reschedule_job": "reschedule_task",
    "pause_job": "pause_task",
    "resume_job": "resume_task",
    "remove_job": "delete_task",
    "remove_all_jobs": "remove_all_tasks",
    "add_jobstore": "add_store",
    "add_executor": "add_executor",
    "add_listener": "add_listener",
}
OPTIONS = {"jobstores": "stores", "executors": "executors", "job_defaults": "task_defaults"}
TASK_FIELDS = {
    "misfire_grace_time": "mistrigger_grace_time",
    "coalesce": "coalesce",
    "max_instances": "max_instances",
    "next_run_time": "next_run_time",
}
TRIGGER_ARGS = {"run_date": "run_at", "start_date": "start_at", "end_date": "end_at"}
EVENTS = {
    "EVENT_JOB_ADDED": "TASK_ADDED",
    "EVENT_JOB_REMOVED": "TASK_REMOVED",
    "EVENT_JOB_MODIFIED": "TASK_MODIFIED",
    "EVENT_JOB_SUBMITTED": "TASK_SUBMITTED",
    "EVENT_JOB_MAX_INSTANCES": "TASK_MAX_INSTANCES",
    "EVENT_JOB_EXECUTED": "TASK_EXECUTED",
    "EVENT_JOB_ERROR": "TASK_ERROR",
    "EVENT_JOB_MISSED": "TASK_MISSED",
    "EVENT_ALL": "ALL_EVENTS",
}
ERRORS = {
    "JobLookupError": "TaskLookupError",
    "ConflictingIdError": "ConflictIdError",
    "MaxInstancesReachedError": "MaximumInstancesError",
    "SchedulerAlreadyRunningError": "SchedulerAlreadyRunningError",
    "SchedulerNotRunningError": "SchedulerNotRunningError",
}

scheduler = AsyncIOScheduler()
assert all(hasattr(scheduler, name) for name in SCHEDULER.values())
assert set(OPTIONS.values()) <= scheduler.option_names
assert all(hasattr(asyncz.events, name) for name in EVENTS.values())
assert all(hasattr(asyncz.exceptions, name) for name in ERRORS.values())
print("every asyncz name exists")
