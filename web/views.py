"""The picker page: one HTML page; everything it shows comes from the public API."""

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_GET

# The picker's labels for the agent's model ids (DESIGN.md §1).
PICKER = [
    {"modelId": "haiku", "label": "Scary", "hint": "Haiku: cheapest, free plan"},
    {"modelId": "sonnet", "label": "Fast", "hint": "Sonnet"},
    {"modelId": "sonnet[1m]", "label": "Fast+", "hint": "Sonnet with 1M context"},
    {"modelId": "opus", "label": "Smart", "hint": "Opus"},
]


@require_GET
def picker(request):
    return render(request, "web/picker.html", {"picker": PICKER, "free_model": settings.FREE_MODEL})
