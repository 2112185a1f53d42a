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
