"""The user's billing API, mounted at /api/billing/."""

from django.urls import path

from . import views

urlpatterns: list = [
    path("cap", views.CapView.as_view(), name="billing-cap"),
    path("reports", views.ReportListView.as_view(), name="billing-reports"),
]
