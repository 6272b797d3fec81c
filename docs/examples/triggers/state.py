from asyncz.triggers import CronTrigger

print(CronTrigger(hour=9, timezone="Europe/Berlin").__getstate__())
print(str(CronTrigger.from_crontab("0 9 * * 1-5")), str(CronTrigger(year="2022/2", month="1/3")))
