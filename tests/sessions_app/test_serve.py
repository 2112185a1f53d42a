"""The production server as `make serve` and the Docker image run it (gunicorn, uvicorn workers,
production settings), in a process of its own on the test database: more turns stream at once
than the threaded server had threads, holding no thread each, while a quote of another session
answers at once."""

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import client_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.timeout(180),
    pytest.mark.django_db(transaction=True),
]


@dataclasses.dataclass(frozen=True)
class Served:
    url: str
    master_pid: int

    def worker_threads(self) -> int:
        """The threads of the server's one worker process."""
        (worker,) = Path(f"/proc/{self.master_pid}/task/{self.master_pid}/children").read_text().split()
        return len(list(Path(f"/proc/{worker}/task").iterdir()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def serve(transactional_db, bridge):
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("the production settings need PostgreSQL and Redis (set DATABASE_URL and REDIS_URL)")
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mk0r.settings.production",
        "DJANGO_SECRET_KEY": "test-only-secret-key-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "PUBLIC_BASE_URL": "http://127.0.0.1",
        "SANDBOX_PROVIDER": "static",
        "BRIDGE_STATIC_URL": bridge.url,
        "BRIDGE_STATIC_TOKEN": bridge.token,
        "SECURE_SSL_REDIRECT": "false",
        "THROTTLE_SESSION_START": "100000/min",
        "WEB_CONCURRENCY": "1",  # one process carries all the turns
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "gunicorn", "--config", "docker/gunicorn.conf.py", "mk0r.asgi:application"]
    process = subprocess.Popen(
        command,
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
        yield Served(url, process.pid)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stderr.close()


def test_more_turns_than_the_old_thread_count_while_a_quote_answers(serve, bridge):
    user = client_for("serve-user", "pro")
    headers = {"Authorization": user._credentials["HTTP_AUTHORIZATION"]}
    api = httpx.Client(base_url=serve.url, headers=headers, timeout=30)
    keys = [api.post("/api/chat/sessions").json()["sessionKey"] for _ in range(101)]
    bridge.turn_events, bridge.turn_interval = 40, 0.25  # 10 s turns
    first_events: list[float] = []
    ends: list[str] = []

    def turn(key: str) -> None:
        with (
            httpx.Client(base_url=serve.url, headers=headers, timeout=30) as own,
            own.stream("POST", "/api/chat", json={"sessionKey": key, "prompt": "go"}) as response,
        ):
            lines = response.iter_lines()
            assert next(lines) == "event: update"
            first_events.append(time.monotonic())
            ends.append([line for line in lines if line.startswith("event: ")][-1])

    threads = [threading.Thread(target=turn, args=(key,)) for key in keys[:100]]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 8
    while len(first_events) < 100:
        assert time.monotonic() < deadline, f"{len(first_events)} of 100 turns started"
        time.sleep(0.05)

    # No thread per open turn: the worker's threads are its view pool and a few of its own.
    assert serve.worker_threads() < 50

    asked = time.monotonic()
    quote = api.post("/api/chat/model/quote", json={"sessionKey": keys[100], "modelId": "sonnet"})
    answered = time.monotonic() - asked

    assert quote.status_code == 200, quote.text
    assert answered < 1.0
    for thread in threads:
        thread.join(timeout=30)
    assert ends == ["event: done"] * 100
