from asyncz.contrib.dashboard import get_task_logger

log = get_task_logger("nightly-report")
log.info("report written")
