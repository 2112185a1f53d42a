"""Redis down: rate limits fail open, and say so once a minute rather than once per request."""

import logging
import os
import uuid
from types import SimpleNamespace

import pytest

from mk0r import throttling
from mk0r.throttling import FailOpenLog, RedisScopedRateThrottle

VIEW = SimpleNamespace(throttle_scope="quote")
WARNING = "rate limits not enforced: Redis is unreachable"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(throttling.time, "monotonic", clock)
    monkeypatch.setattr(throttling, "fail_open_log", FailOpenLog())
    monkeypatch.setattr(RedisScopedRateThrottle, "THROTTLE_RATES", {"quote": "5/min"})
    throttling._script.cache_clear()
    yield clock
    throttling._script.cache_clear()


def _hits(settings, url: str, count: int) -> list[bool]:
    settings.REDIS_URL = url
    throttling._script.cache_clear()
    request = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=f"t{uuid.uuid4().hex}"))
    return [RedisScopedRateThrottle().allow_request(request, VIEW) for _ in range(count)]


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "mk0r.throttling" and r.levelno == logging.WARNING]


def test_redis_down_lets_requests_through_and_logs_once_a_minute(settings, clock, caplog):
    caplog.set_level(logging.WARNING, logger="mk0r.throttling")
    down = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    assert all(_hits(settings, down, 8))  # over the 5/min rate: failing open
    (first,) = _warnings(caplog)
    assert first.startswith(WARNING) and "1 request(s) let through unchecked" in first

    clock.now += 59
    assert all(_hits(settings, down, 3))
    assert len(_warnings(caplog)) == 1  # still within the minute

    clock.now += 2
    assert all(_hits(settings, down, 1))
    second = _warnings(caplog)[1]
    # Every request since the first report is counted in the next one.
    assert second.startswith(WARNING) and "11 request(s) let through unchecked" in second


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)")
def test_redis_back_says_so_once_and_limits_hold_again(settings, clock, caplog):
    caplog.set_level(logging.WARNING, logger="mk0r.throttling")
    assert all(_hits(settings, "redis://127.0.0.1:1/0", 3))

    allowed = _hits(settings, os.environ["REDIS_URL"], 7)

    assert allowed == [True] * 5 + [False] * 2
    warnings = _warnings(caplog)
    assert len(warnings) == 2
    assert warnings[1] == "rate limits enforced again: Redis answers (2 more request(s) went through unchecked)"
