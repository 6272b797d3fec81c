from lilya.apps import Lilya

from asyncz.contrib.dashboard import AsynczAdmin
from asyncz.schedulers import AsyncIOScheduler

scheduler = AsyncIOScheduler()
app = Lilya(on_startup=[scheduler.start], on_shutdown=[scheduler.shutdown])

AsynczAdmin(scheduler=scheduler).include_in(app)  # served under /dashboard/

if __name__ == "__main__":  # serve it: uvicorn lilya_app:app
    from lilya.testclient import TestClient

    with TestClient(app) as client:  # here, one request without a server
        print(client.get("/dashboard/tasks/").status_code)
