"""The ASGI application the production server (`make serve`, the Docker image) runs."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mk0r.settings.base")

application = get_asgi_application()
