from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import health

urlpatterns = [
    path("", include("web.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/billing/", include("billing.urls")),
    path("api/", include("sessions_app.urls")),
]

handler400 = "mk0r.errors.handler400"
handler403 = "mk0r.errors.handler403"
handler404 = "mk0r.errors.handler404"
handler500 = "mk0r.errors.handler500"
