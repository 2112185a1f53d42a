"""Settings for every environment.

The embedded default (no environment at all) is a working product: SQLite,
eager Celery, the local sandbox provider. Production sets DATABASE_URL,
REDIS_URL and secrets; see production.py and .env.example.
"""

import contextlib
from decimal import Decimal
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-dev-key-never-used-in-production")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "billing",
    "sessions_app",
    "web",
    "mk0r",
]

MIDDLEWARE = [
    # First, so that every log record of the request (even of a refused one) carries its id.
    "mk0r.request_id.RequestIdMiddleware",
    "mk0r.middleware.BodySizeLimitMiddleware",
    "mk0r.django_middleware.SecurityMiddleware",
    "mk0r.middleware.StaticFilesMiddleware",
    "mk0r.django_middleware.SessionMiddleware",
    "mk0r.django_middleware.CommonMiddleware",
    "mk0r.django_middleware.CsrfViewMiddleware",
    "mk0r.django_middleware.AuthenticationMiddleware",
    "mk0r.django_middleware.MessageMiddleware",
    "mk0r.django_middleware.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

# Django's own middleware runs as mk0r.django_middleware's subclasses, which its checks for
# "middleware missing" do not recognise by path; mk0r.checks runs the checks that depend on them.
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003"]

ROOT_URLCONF = "mk0r.urls"
WSGI_APPLICATION = "mk0r.wsgi.application"
ASGI_APPLICATION = "mk0r.asgi.application"
# Under ASGI (make serve, make run) synchronous API views run on this many threads per process
# (mk0r.threadpool); chat turns hold none. Each thread keeps one database connection.
SYNC_VIEW_THREADS = env.int("SYNC_VIEW_THREADS", default=16)

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The embedded default keeps its SQLite file (and local sandboxes) under var/.
(BASE_DIR / "var").mkdir(exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")}
# Persistent connections, one per view thread (mk0r.threadpool checks them before and after
# every view on the thread that owns them, as Django's request signals do under WSGI).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The statements every quote and switch runs are prepared on each connection at their first run
# (mk0r.db.prepared_cursor). Turn off behind a transaction-pooling PgBouncer.
DB_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis as broker when there is one, otherwise tasks run in-process.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# WhiteNoise serves static files from the apps directly here (no collectstatic needed for
# `make run`); production serves the collected, hashed and compressed copies. It warns
# when STATIC_ROOT is missing, so it always exists (empty until collectstatic).
WHITENOISE_USE_FINDERS = True
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Request bodies over 64 KiB are refused with 413 before any parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BODY_BYTES", default=64 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "billing.subscriptions.authentication.TokenWithSubscriptionAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["mk0r.parsers.JSONBodyParser"],
    "EXCEPTION_HANDLER": "mk0r.errors.api_exception_handler",
    # Per user, for the views that set a throttle_scope: one atomic script in Redis when
    # REDIS_URL is set (mk0r.throttling), else DRF's own in the local cache.
    "DEFAULT_THROTTLE_CLASSES": ["mk0r.throttling.RedisScopedRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "model_switch": env("THROTTLE_MODEL_SWITCH", default="60/min"),
        "quote": env("THROTTLE_QUOTE", default="120/min"),
        "session_start": env("THROTTLE_SESSION_START", default="20/hour"),
    },
    "DEFAULT_SCHEMA_CLASS": "mk0r.schema.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

# OpenAPI 3 schema at /api/schema/, Swagger UI at /api/docs/.
SPECTACULAR_SETTINGS = {
    "TITLE": "mk0r session backend",
    "DESCRIPTION": (
        "Agent sessions in sandbox VMs, streamed chat, and model switches with a cost quote before "
        'confirmation. Every error answer has the body `{"code", "message", "extra"}`; '
        "`confirmation_required` and `quote_stale` also carry the `quote` to confirm."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/",
    "PREPROCESSING_HOOKS": ["mk0r.schema.exclude_internal"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "sessions_app.schema_links.add_links"],
    # Swagger UI from the installed package, not a CDN: works offline and under a strict CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Sandboxes and the in-VM bridge -----------------------------------------
# local: the bridge runs as a subprocess on a free loopback port.
# e2b: one E2B sandbox per session, built from docker/e2b/.
# static: attach to one bridge that is already running (BRIDGE_STATIC_URL).
SANDBOX_PROVIDER = env("SANDBOX_PROVIDER", default="local")
BRIDGE_PORT = env.int("BRIDGE_PORT", default=3002)
BRIDGE_CONNECT_TIMEOUT = env.float("BRIDGE_CONNECT_TIMEOUT", default=3.0)
BRIDGE_READ_TIMEOUT = env.float("BRIDGE_READ_TIMEOUT", default=30.0)
BRIDGE_PROMPT_TIMEOUT = env.float("BRIDGE_PROMPT_TIMEOUT", default=600.0)
BRIDGE_RETRIES = env.int("BRIDGE_RETRIES", default=2)
# A quote across tokenizers asks the bridge to count the conversation for both models; it waits
# this long for the count (connect and read each), then quotes with its estimate instead.
BRIDGE_COUNT_TOKENS_TIMEOUT = env.float("BRIDGE_COUNT_TOKENS_TIMEOUT", default=0.3)
# A switch or resume finding another one of the same session under way waits this long for it
# before answering 409 session_busy.
SESSION_LEASE_WAIT_SECONDS = env.float("SESSION_LEASE_WAIT_SECONDS", default=2.0)
BRIDGE_STATIC_URL = env("BRIDGE_STATIC_URL", default="")
BRIDGE_STATIC_TOKEN = env("BRIDGE_STATIC_TOKEN", default="")
LOCAL_AGENT_CMD = env("LOCAL_AGENT_CMD", default="")
# How the devstack emulator the local sandboxes use answers: at once ("none"), or with a real
# model's first-token delay and output speed ("realistic"; `make run` uses it).
EMULATOR_LATENCY = env("EMULATOR_LATENCY", default="none")
LOCAL_SANDBOX_ROOT = Path(env("LOCAL_SANDBOX_ROOT", default=str(BASE_DIR / "var" / "sandboxes")))
E2B_API_KEY = env("E2B_API_KEY", default="")
E2B_DOMAIN = env("E2B_DOMAIN", default="")
E2B_TEMPLATE = env("E2B_TEMPLATE", default="mk0r-session")
E2B_SANDBOX_TIMEOUT = env.int("E2B_SANDBOX_TIMEOUT", default=3600)
# The start command inside the template (docker/e2b/start-bridge.sh, installed there).
E2B_BRIDGE_COMMAND = env("E2B_BRIDGE_COMMAND", default="/opt/mk0r/start-bridge.sh")
# Where the usage relay inside a sandbox posts to (the bridge's --usage-url).
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")

# --- Models and plans -------------------------------------------------------
FREE_MODEL = env("FREE_MODEL", default="haiku")
DEFAULT_MODEL = env("DEFAULT_MODEL", default=FREE_MODEL)
QUOTE_TTL_SECONDS = env.int("QUOTE_TTL_SECONDS", default=120)
# Every quote is stored; unconfirmed ones are deleted this long after they expire.
QUOTE_RETENTION_DAYS = env.int("QUOTE_RETENTION_DAYS", default=7)
DEFAULT_AUTO_CONFIRM_USD = Decimal(env("DEFAULT_AUTO_CONFIRM_USD", default="0"))
# A confirmed quote goes stale when the tax it would show now differs by more than this share.
QUOTE_STALE_TOLERANCE = Decimal(env("QUOTE_STALE_TOLERANCE", default="0.05"))
# Weekly cap of flat-rate plans in API-equivalent dollars. An estimate: Anthropic publishes none.
CAP_WEEKLY_UNITS = {
    "pro": env("CAP_WEEKLY_UNITS_PRO", default="50"),
    "max5": env("CAP_WEEKLY_UNITS_MAX5", default="250"),
    "max20": env("CAP_WEEKLY_UNITS_MAX20", default="1000"),
}

# --- Cap reports and alerts -------------------------------------------------
# (CAP_WEEKLY_UNITS above only seeds the CapPlan rows; the admin edits the estimate since.)
CAP_REPORT_CHUNK = env.int("CAP_REPORT_CHUNK", default=1000)  # users per GROUP BY
CAP_ALERT_WEBHOOK_URL = env("CAP_ALERT_WEBHOOK_URL", default="")  # a user's own URL wins
CAP_WEBHOOK_TIMEOUT = env.float("CAP_WEBHOOK_TIMEOUT", default=5.0)
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(BASE_DIR / "var" / "mail"))  # the filebased backend
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="mk0r <noreply@localhost>")

# Celery beat's schedule is in mk0r/celery.py, with the app: building it here would load
# Celery into every process that reads the settings.

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every record carries the id of the request it was logged in ("-" outside a request).
    "filters": {"request_id": {"()": "mk0r.request_id.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "mk0r.request_id.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env("LOG_FORMAT", default="plain"),
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
