from asyncz.schedulers import AsyncIOScheduler

# Keyword arguments ...
scheduler = AsyncIOScheduler(
    timezone="Europe/Berlin",
    stores={"default": {"type": "memory"}},
    executors={"default": {"type": "asyncio"}, "io": {"type": "threadpool", "max_workers": 4}},
    task_defaults={"coalesce": False, "max_instances": 3},
)

# ... or a global_config, flat or nested; strings from ini/YAML files are coerced.
configured = AsyncIOScheduler(
    global_config={
        "asyncz.timezone": "UTC",
        "asyncz.task_defaults.coalesce": "false",
        "asyncz.executors.io": {"type": "threadpool", "max_workers": "4"},
    }
)
print(configured.timezone, configured.task_defaults)

try:
    AsyncIOScheduler(timezon="UTC")
except TypeError as exc:
    print(str(exc)[:60], "...")
