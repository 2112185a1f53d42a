"""Per-user rate limits, counted in Redis by one atomic script."""

import logging
import threading
import time
import uuid
from functools import cache

import redis
from django.conf import settings
from django.core.cache import cache as django_cache
from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger(__name__)

# A sliding window log, as DRF's own throttle keeps it (only allowed requests count), on the
# Redis server's clock so that replicas agree. Returns -1 when allowed, else the seconds until
# the oldest request leaves the window (as a string: Lua numbers come back as integers).
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('EXPIRE', KEYS[1], math.ceil(window))
  return -1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - now)
"""


class FailOpenLog:
    """While Redis is down, requests go through unthrottled: one warning a minute says so (with
    how many went through unchecked), not one per request; one line says when limits hold again.
    Per process: each web replica reports its own share."""

    every_seconds = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._warned_at: float | None = None
        self._unchecked = 0

    def failed(self, scope: str, exc: Exception) -> None:
        with self._lock:
            self._unchecked += 1
            now = time.monotonic()
            if self._warned_at is not None and now - self._warned_at < self.every_seconds:
                return
            count, self._unchecked, self._warned_at = self._unchecked, 0, now
        logger.warning(
            "rate limits not enforced: Redis is unreachable (%s); %d request(s) let through unchecked"
            " since the last report, latest in scope %s",
            exc,
            count,
            scope,
        )

    def checked(self) -> None:
        if self._warned_at is None:  # the usual case, without taking the lock
            return
        with self._lock:
            if self._warned_at is None:
                return
            count, self._unchecked, self._warned_at = self._unchecked, 0, None
        logger.warning("rate limits enforced again: Redis answers (%d more request(s) went through unchecked)", count)


fail_open_log = FailOpenLog()


@cache
def _script():
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1.0, socket_timeout=1.0)
    return client.register_script(_SLIDING_WINDOW)


class RedisScopedRateThrottle(ScopedRateThrottle):
    """DRF's scoped throttle (same scopes, rates, keys and Retry-After), counted in Redis in one
    round trip. DRF's own reads the pickled history, then writes it back: two round trips, and
    two replicas can both let through the request that fills the last slot. Without REDIS_URL
    (the embedded default's local cache) it is DRF's own. If Redis fails, requests go through:
    a rate limit is not worth an outage."""

    _wait: float | None = None

    def allow_request(self, request, view):
        if not settings.REDIS_URL:
            return super().allow_request(request, view)
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.num_requests, self.duration = self.parse_rate(self.get_rate())
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        try:
            # make_key: the same namespace as the cache's own keys (KEY_PREFIX, version).
            result = _script()(
                keys=[django_cache.make_key(key)], args=[self.duration, self.num_requests, uuid.uuid4().hex]
            )
        except redis.RedisError as exc:
            fail_open_log.failed(self.scope, exc)
            return True
        fail_open_log.checked()
        self._wait = None if result == -1 else float(result)
        return self._wait is None

    def wait(self):
        if not settings.REDIS_URL:
            return super().wait()
        return self._wait
