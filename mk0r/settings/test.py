"""Test overrides: fast hashing, short timeouts, and the machine's PostgreSQL and
Redis whenever DATABASE_URL / REDIS_URL are set (CI sets both)."""

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
BRIDGE_CONNECT_TIMEOUT = 1.0
BRIDGE_READ_TIMEOUT = 3.0
BRIDGE_RETRIES = 1
# Tests enqueue for real only where they start a worker themselves.
CELERY_TASK_ALWAYS_EAGER = True
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# Rates high enough that no test trips them by accident; tests of throttling set their own.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"model_switch": "100000/min", "quote": "100000/min", "session_start": "100000/min"},
}
