"""The OpenAPI schema: generates with no warnings, lists every public endpoint and the error
codes each one documents. New endpoints do not break these tests; they must only keep the
schema free of warnings."""

import os
import subprocess
import sys

import pytest
import yaml
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator

# (method, path) -> {status: codes} that must be documented. Checked as a subset: more is fine.
EXPECTED = {
    ("post", "/api/auth/token"): {
        400: {"invalid_request"},
        401: {"invalid_credentials"},
        413: {"payload_too_large"},
    },
    ("get", "/api/chat/sessions"): {401: {"not_authenticated"}},
    ("post", "/api/chat/sessions"): {
        400: {"invalid_request"},
        401: {"not_authenticated"},
        429: {"throttled"},
        503: {"sandbox_unavailable"},
    },
    ("get", "/api/chat/sessions/{key}"): {404: {"session_not_found"}},
    ("delete", "/api/chat/sessions/{key}"): {404: {"session_not_found"}},
    ("get", "/api/chat/sessions/{key}/switches"): {404: {"session_not_found"}},
    ("post", "/api/chat/sessions/{key}/resume"): {
        404: {"session_not_found"},
        409: {"session_closed", "session_busy"},
        410: {"sandbox_gone"},
    },
    ("post", "/api/chat"): {
        400: {"invalid_request"},
        404: {"session_not_found"},
        409: {"agent_session_lost", "session_closed"},
        410: {"sandbox_gone"},
        502: {"agent_unreachable", "agent_error"},
        504: {"agent_timeout"},
    },
    ("post", "/api/chat/cancel"): {
        404: {"session_not_found"},
        410: {"sandbox_gone"},
        502: {"agent_unreachable", "agent_error"},
    },
    ("post", "/api/chat/model/quote"): {
        400: {"invalid_request", "unknown_model"},
        401: {"not_authenticated"},
        402: {"subscription_required"},
        403: {"model_not_in_plan"},
        404: {"session_not_found"},
        409: {"session_closed"},
        410: {"sandbox_gone"},
        429: {"throttled"},
    },
    ("post", "/api/chat/model"): {
        400: {"invalid_request", "unknown_model", "model_rejected"},
        401: {"not_authenticated"},
        402: {"subscription_required"},
        403: {"model_not_in_plan"},
        404: {"session_not_found", "quote_not_found"},
        409: {
            "agent_session_lost",
            "session_closed",
            "confirmation_required",
            "quote_stale",
            "quote_used",
            "quote_mismatch",
            "session_busy",
        },
        410: {"quote_expired", "sandbox_gone"},
        413: {"payload_too_large"},
        429: {"throttled"},
        502: {"agent_unreachable", "agent_error"},
        503: {"sandbox_unavailable"},
        504: {"agent_timeout"},
    },
}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _codes(response: dict) -> set[str]:
    examples = response.get("content", {}).get("application/json", {}).get("examples", {})
    return {example["value"]["code"] for example in examples.values()}


def test_spectacular_validates_with_no_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", str(out)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "mk0r.settings.test"},
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Warning" not in result.stderr, result.stderr
    assert yaml.safe_load(out.read_text())["openapi"].startswith("3.")


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_every_public_endpoint_documents_its_errors(schema, method, path):
    operation = schema["paths"][path][method]
    assert operation.get("summary")
    responses = operation["responses"]
    assert any(status.startswith("2") for status in responses)
    for status, codes in EXPECTED[(method, path)].items():
        assert str(status) in responses, f"{method} {path}: no {status}"
        documented = _codes(responses[str(status)])
        assert codes <= documented, f"{method} {path} {status}: missing {codes - documented}"


def test_every_operation_documents_errors_with_the_error_body(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
            for status, response in errors.items():
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[1] in {"ErrorBody", "ErrorWithQuote"}, (method, path, status)
                for example in response["content"]["application/json"].get("examples", {}).values():
                    assert {"code", "message", "extra"} <= set(example["value"]), (method, path, status)


def test_error_body_and_quote_carrying_errors(schema):
    components = schema["components"]["schemas"]
    assert {"code", "message", "extra"} <= set(components["ErrorBody"]["required"])
    assert "quote" in components["ErrorWithQuote"]["properties"]
    conflicts = schema["paths"]["/api/chat/model"]["post"]["responses"]["409"]["content"]["application/json"]
    assert conflicts["schema"]["$ref"].endswith("/ErrorWithQuote")
    for name in ("confirmation_required", "quote_stale"):
        example = next(e for e in conflicts["examples"].values() if e["value"]["code"] == name)
        assert example["value"]["quote"]["taxUsd"]


def test_chat_is_documented_as_a_stream(schema):
    content = schema["paths"]["/api/chat"]["post"]["responses"]["200"]["content"]
    assert "text/event-stream" in content
    # Event by event, as OpenAPI 3.0 tools read a stream; errors sent as an event alike.
    for status, response in schema["paths"]["/api/chat"]["post"]["responses"].items():
        event = response["content"].get("text/event-stream", {}).get("schema")
        assert event is None or event["required"] == ["event", "data"], status
    stream = next(iter(content["text/event-stream"]["examples"].values()))["value"]
    assert "event: update" in stream and "event: done" in stream


def test_internal_endpoints_are_not_public(schema):
    assert not [path for path in schema["paths"] if path.startswith("/api/internal/")]
    assert "/api/schema/" not in schema["paths"]


def test_operation_ids_are_unique(schema):
    ids = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


@pytest.mark.django_db
def test_schema_and_swagger_ui_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/chat/model" in schema.json()["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    # Swagger UI comes from the installed package, not from a CDN.
    assert b"cdn.jsdelivr" not in docs.content


def test_billing_endpoints_have_summaries_and_a_tag(schema):
    billing = {path: ops for path, ops in schema["paths"].items() if path.startswith("/api/billing/")}
    assert set(billing) == {
        "/api/billing/cap",
        "/api/billing/reports",
        "/api/billing/cache-health",
        "/api/billing/quote-accuracy",
    }
    for path, operations in billing.items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            assert operation.get("tags") == ["billing"], (method, path)
    parameters = {p["name"] for p in billing["/api/billing/quote-accuracy"]["get"]["parameters"]}
    assert {"days", "worst"} <= parameters


def test_what_the_schema_promises_the_api_accepts(schema):
    from billing.subscriptions.entitlements import PICKER_MODELS

    components = schema["components"]["schemas"]
    # The picker's ids as the catalog knows them: an id outside the enum is 400 unknown_model.
    assert components["ModelIdEnum"]["enum"] == list(PICKER_MODELS)
    assert components["ChatInput"]["properties"]["prompt"]["minLength"] == 1
    assert components["SessionOutput"]["properties"]["closedAt"]["nullable"] is True
    # Bodies that refuse unknown fields say so.
    assert components["SessionListCreateInput"]["additionalProperties"] is False
    assert components["SessionResumeInput"]["additionalProperties"] is False
    assert "requestBody" not in schema["paths"]["/api/chat/sessions"]["post"] or not schema["paths"][
        "/api/chat/sessions"
    ]["post"]["requestBody"].get("required")


@pytest.mark.parametrize(
    ("path", "codes"),
    [
        ("/api/chat/sessions/{key}/cache-health", {"session_not_found", "not_found"}),
        ("/api/billing/cap", {"no_weekly_cap"}),
    ],
)
def test_reads_document_their_404(schema, path, codes):
    assert codes <= _codes(schema["paths"][path]["get"]["responses"]["404"])


def test_a_started_session_links_to_what_uses_its_key(schema):
    links = schema["paths"]["/api/chat/sessions"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} == {"chat_turn", "model_quote", "model_switch"}
    confirm = schema["paths"]["/api/chat/model/quote"]["post"]["responses"]["200"]["links"]["confirm"]
    assert confirm["requestBody"]["quoteId"] == "$response.body#/quote/id"
