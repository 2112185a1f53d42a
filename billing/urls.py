"""The user's billing API, mounted at /api/billing/."""

from django.urls import path

urlpatterns: list = []
