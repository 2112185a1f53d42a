from django.urls import path

from . import health_views, internal_views, views
from .schema import document

urlpatterns = [
    path("auth/token", views.AuthTokenView.as_view(), name="auth-token"),
    path("chat/sessions", views.SessionListCreateView.as_view(), name="sessions"),
    path("chat/sessions/<uuid:key>", views.SessionDetailView.as_view(), name="session-detail"),
    path("chat/sessions/<uuid:key>/switches", views.SessionSwitchesView.as_view(), name="session-switches"),
    path("chat/sessions/<uuid:key>/resume", views.SessionResumeView.as_view(), name="session-resume"),
    path("chat/sessions/<uuid:key>/cache-health", health_views.SessionCacheHealthView.as_view(), name="cache-health"),
    path("chat", views.ChatView.as_view(), name="chat"),
    path("chat/model", views.ModelSwitchView.as_view(), name="model-switch"),
    path("chat/model/quote", views.ModelQuoteView.as_view(), name="model-quote"),
    path("internal/usage", internal_views.UsageIngestView.as_view(), name="internal-usage"),
]

# Their OpenAPI documentation (kept out of views.py).
document()
