"""Per-user rate limits counted in Redis: atomic, one key per user and scope (Redis down: test_redis_down.py)."""

import threading
import uuid
from types import SimpleNamespace

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from mk0r.throttling import RedisScopedRateThrottle

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (set REDIS_URL)")

VIEW = SimpleNamespace(throttle_scope="quote")


@pytest.fixture
def user_request(monkeypatch):
    monkeypatch.setattr(RedisScopedRateThrottle, "THROTTLE_RATES", {"quote": "5/min"})
    request = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=f"t{uuid.uuid4().hex}"))
    yield request
    cache.delete(f"throttle_quote_{request.user.pk}")


def _hit(request) -> tuple[bool, float | None]:
    throttle = RedisScopedRateThrottle()
    return throttle.allow_request(request, VIEW), throttle.wait()


def test_concurrent_requests_get_exactly_the_rate(user_request):
    results = []
    barrier = threading.Barrier(16)

    def hit():
        barrier.wait()
        results.append(_hit(user_request)[0])

    threads = [threading.Thread(target=hit) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results.count(True) == 5
    allowed, wait = _hit(user_request)
    assert not allowed and 0 < wait <= 60


def test_the_window_lives_in_redis_under_the_cache_namespace(user_request):
    assert _hit(user_request) == (True, None)
    client = redis.Redis.from_url(settings.REDIS_URL)
    key = cache.make_key(f"throttle_quote_{user_request.user.pk}")
    assert client.type(key) == b"zset" and client.zcard(key) == 1
    assert 0 < client.ttl(key) <= 60
