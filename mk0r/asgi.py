"""The ASGI application the production server (`make serve`, the Docker image) runs."""

import os
import sys

from django.core.asgi import get_asgi_application
from django.core.signals import request_started
from django.db import close_old_connections, reset_queries

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mk0r.settings.base")

application = get_asgi_application()

# Django's request-started receivers are synchronous, so under ASGI they run on a thread asgiref
# makes for the request and keeps until its response is closed: a thread per open chat turn. On
# that thread they do nothing: it holds no database connection (views and the relay's writes use
# the view threads', which mk0r.threadpool checks before and after each use, as these would).
# docs/ARCHITECTURE.md, "Database connections".
request_started.disconnect(reset_queries)
request_started.disconnect(close_old_connections)

# The event loop and the view threads share the interpreter lock. A view thread back from the
# database waits for the loop to let go of it, by default up to 5 ms at every query; with a
# thousand turns relaying, the loop seldom lets go sooner. 0.5 ms keeps a quote's queries from
# queueing behind the relay (docs/PERFORMANCE.md, "Open chat turns").
sys.setswitchinterval(0.0005)
