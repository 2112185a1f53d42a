"""The user's billing API, mounted at /api/billing/."""

from django.urls import path

from billing.caps import views as caps_views
from billing.usage import views as usage_views
from mk0r.threadpool import in_thread_pool

urlpatterns: list = [
    path("cap", in_thread_pool(caps_views.CapView.as_view()), name="billing-cap"),
    path("reports", in_thread_pool(caps_views.ReportListView.as_view()), name="billing-reports"),
    path("cache-health", in_thread_pool(usage_views.UserCacheHealthView.as_view()), name="billing-cache-health"),
    path("quote-accuracy", in_thread_pool(usage_views.QuoteAccuracyView.as_view()), name="billing-quote-accuracy"),
]
