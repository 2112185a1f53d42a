"""The service's ASGI application on a real uvicorn server, in a thread of the test process: for
tests whose chat turns stream (pytest-django's live_server is a WSGI server)."""

import threading
import time

import uvicorn
from django.core.asgi import get_asgi_application

from mk0r import threadpool


class AsgiServer:
    def __init__(self) -> None:
        config = uvicorn.Config(
            get_asgi_application(), host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="asgi-server", daemon=True)
        self.url = ""

    def start(self) -> "AsgiServer":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the ASGI server did not start"
            time.sleep(0.02)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        # The view threads end, and with them their database connections (the test database is
        # dropped at the end of the run).
        threadpool.view_threads_stop()
