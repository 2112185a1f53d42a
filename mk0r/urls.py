from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("sessions_app.urls")),
]

handler404 = "mk0r.errors.handler404"
handler500 = "mk0r.errors.handler500"
