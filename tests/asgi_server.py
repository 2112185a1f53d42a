"""The service's ASGI application on a real uvicorn server, in a thread of the test process: for
tests whose chat turns stream (pytest-django's live_server is a WSGI server)."""

import threading
import time

import uvicorn
from django.core.asgi import get_asgi_application
from django.core.signals import request_started
from django.db import connections

from mk0r import threadpool

# On SQLite's in-memory test database, the server's views take turns (see AsgiServer); a test
# body that uses the ORM while the server runs takes the same lock.
DB_LOCK = threading.RLock()


class AsgiServer:
    def __init__(self) -> None:
        config = uvicorn.Config(
            get_asgi_application(), host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="asgi-server", daemon=True)
        self.url = ""

    def start(self) -> "AsgiServer":
        self._share_an_in_memory_database()
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
        _view_threads_stop()
        for undo in self._undo:
            undo()

    _undo: tuple = ()

    def _share_an_in_memory_database(self) -> None:
        """SQLite's in-memory test database: every thread of the server uses the test's own
        connection, as Django's live server does (another connection would find its tables
        locked by this one), one view at a time (a stream's body is sent outside the lock: it
        does not touch the database)."""
        shared = connections["default"]
        if shared.vendor != "sqlite" or not shared.is_in_memory_db():
            return
        shared.inc_thread_sharing()
        original = threadpool._run

        def run(*args, **kwargs):
            connections["default"] = shared
            with DB_LOCK:
                return original(*args, **kwargs)

        def use_shared(**kwargs):
            connections["default"] = shared

        threadpool._run = run
        request_started.connect(use_shared, dispatch_uid="tests.asgi_server.shared")

        def undo_run():
            threadpool._run = original

        def undo_signal():
            request_started.disconnect(dispatch_uid="tests.asgi_server.shared")
            shared.dec_thread_sharing()

        self._undo = (undo_run, undo_signal)


def _view_threads_stop() -> None:
    """Close every view thread's database connections and end the threads; new ones start on
    demand. (A barrier holds each thread to one of the closing tasks, so each runs one.)"""
    pool, threadpool._pool = threadpool._pool, None
    if pool is None:
        return
    size = pool._max_workers
    barrier = threading.Barrier(size)

    def close() -> None:
        connections.close_all()
        barrier.wait(timeout=10)

    for future in [pool.submit(close) for _ in range(size)]:
        future.result()
    pool.shutdown(wait=True)
