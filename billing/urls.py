"""The user's billing API, mounted at /api/billing/."""

from django.urls import path

from . import health_views, views

urlpatterns: list = [
    path("cap", views.CapView.as_view(), name="billing-cap"),
    path("reports", views.ReportListView.as_view(), name="billing-reports"),
    path("cache-health", health_views.UserCacheHealthView.as_view(), name="billing-cache-health"),
    path("quote-accuracy", health_views.QuoteAccuracyView.as_view(), name="billing-quote-accuracy"),
]
