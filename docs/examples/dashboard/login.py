import hmac
import os

from asyncz.contrib.dashboard import AsynczAdmin, SimpleUsernamePasswordBackend, User
from asyncz.contrib.dashboard.config import DashboardConfig
from asyncz.schedulers import AsyncIOScheduler

os.environ.setdefault("DASHBOARD_PASSWORD", "demo only")  # set both for real in your deployment
os.environ.setdefault("DASHBOARD_SECRET", "demo only, 32 characters or more.")


def verify(username: str, password: str) -> User | None:
    if username == "admin" and hmac.compare_digest(password, os.environ["DASHBOARD_PASSWORD"]):
        return User(id="admin", name="Admin")
    return None


scheduler = AsyncIOScheduler()
admin = AsynczAdmin(
    scheduler=scheduler,
    enable_login=True,
    backend=SimpleUsernamePasswordBackend(verify),  # verify may also be a coroutine function
    config=DashboardConfig(secret_key=os.environ["DASHBOARD_SECRET"]),
)

if __name__ == "__main__":
    from lilya.apps import Lilya
    from lilya.testclient import TestClient

    app = Lilya()
    admin.include_in(app)
    with TestClient(app, follow_redirects=False) as client:
        print(client.get("/dashboard/").status_code)  # no session: to the login page
