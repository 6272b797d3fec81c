"""Task functions of the tasks page's examples (a module, so stores can name them)."""


def cleanup(days=7):
    print(f"cleanup: older than {days} days")


async def refresh_cache(region):
    print("refreshing", region)
