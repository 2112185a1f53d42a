"""Production: secrets, hosts and services come from the environment with no defaults.

Required: DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, DATABASE_URL, REDIS_URL,
PUBLIC_BASE_URL, and E2B_API_KEY while SANDBOX_PROVIDER is e2b (the default here).
A missing one stops the process at start (ImproperlyConfigured), never a silent fallback.
`manage.py check --deploy` is clean with these settings (tests/mk0r/test_production_settings.py).
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import LOGGING, env


def required(name: str) -> str:
    """The variable's value; unset or blank stops the process (an empty secret is no secret)."""
    value = env.str(name, default="").strip()
    if not value:
        raise ImproperlyConfigured(f"Set the {name} environment variable (required in production).")
    return value


SECRET_KEY = required("DJANGO_SECRET_KEY")
required("DJANGO_ALLOWED_HOSTS")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
required("DATABASE_URL")  # base.py built DATABASES from it; here it may not fall back to SQLite
DEBUG = False

# Redis carries the Celery broker and the cache; tasks never run in the web process.
REDIS_URL = required("REDIS_URL")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ALWAYS_EAGER = False

# Sandboxes are E2B VMs; they post usage back to the public URL of this service.
SANDBOX_PROVIDER = env("SANDBOX_PROVIDER", default="e2b")
if SANDBOX_PROVIDER == "e2b":
    E2B_API_KEY = required("E2B_API_KEY")
PUBLIC_BASE_URL = required("PUBLIC_BASE_URL")

# --- HTTPS behind a TLS-terminating proxy -----------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Probes come over plain HTTP from inside the network: answer them, do not redirect.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"

# --- Static files: collected at image build, served by WhiteNoise ---------------
# Hashed names (cached forever by browsers) and precompressed copies (mk0r/static_storage.py).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "mk0r.static_storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = False

# --- Logs: one JSON object per line, each with the request id ------------------
LOGGING["handlers"]["console"]["formatter"] = env("LOG_FORMAT", default="json")
