from django.urls import path

from mk0r.threadpool import in_thread_pool

from . import cache_health_views, internal_views, turn_history_views, views
from .schema import document

# Synchronous views run on the view thread pool under ASGI (mk0r.threadpool); the chat turn
# streams on the event loop (views.chat). The chat turn's route comes first: mk0r/urls.py says why.
urlpatterns = [
    path("chat", views.chat, name="chat"),
    path("auth/token", in_thread_pool(views.AuthTokenView.as_view()), name="auth-token"),
    path("chat/sessions", in_thread_pool(views.SessionListCreateView.as_view()), name="sessions"),
    path("chat/sessions/<uuid:key>", in_thread_pool(views.SessionDetailView.as_view()), name="session-detail"),
    path(
        "chat/sessions/<uuid:key>/switches",
        in_thread_pool(views.SessionSwitchesView.as_view()),
        name="session-switches",
    ),
    path(
        "chat/sessions/<uuid:key>/turns",
        in_thread_pool(turn_history_views.SessionTurnsView.as_view()),
        name="session-turns",
    ),
    path("chat/sessions/<uuid:key>/resume", in_thread_pool(views.SessionResumeView.as_view()), name="session-resume"),
    path(
        "chat/sessions/<uuid:key>/cache-health",
        in_thread_pool(cache_health_views.SessionCacheHealthView.as_view()),
        name="cache-health",
    ),
    path("chat/cancel", in_thread_pool(views.ChatCancelView.as_view()), name="chat-cancel"),
    path("chat/model", in_thread_pool(views.ModelSwitchView.as_view()), name="model-switch"),
    path("chat/model/quote", in_thread_pool(views.ModelQuoteView.as_view()), name="model-quote"),
    path("internal/usage", in_thread_pool(internal_views.UsageIngestView.as_view()), name="internal-usage"),
]

# Their OpenAPI documentation (kept out of views.py).
document()
