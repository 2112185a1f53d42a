"""The URL configuration's order: a request keeps the list of routes tried before its own (its
ResolverMatch.tried) for as long as it lives, and a chat turn lives for minutes."""

from django.urls import resolve


def test_a_chat_turn_is_the_first_route_tried():
    match = resolve("/api/chat")
    assert (match.url_name, len(match.tried)) == ("chat", 1)


def test_every_other_route_still_resolves_to_its_view():
    named = {
        "/": "picker",
        "/healthz": "healthz",
        "/api/schema/": "schema",
        "/api/docs/": "swagger-ui",
        "/api/chat/model/quote": "model-quote",
        "/api/chat/sessions": "sessions",
        "/api/billing/cap": "billing-cap",
        "/admin/": "index",
    }
    assert {path: resolve(path).url_name for path in named} == named
