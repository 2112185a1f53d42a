"""OpenAPI links of the sessions and chat API (a drf-spectacular postprocessing hook)."""

# OpenAPI links: where the ids an answer carries go next (for clients and for tools that chain
# calls, as schemathesis's stateful tests do).
LINKS = {
    ("/api/chat/sessions", "post", "201"): {
        "chat": ("chat_turn", {"sessionKey": "$response.body#/sessionKey"}),
        "quote": ("model_quote", {"sessionKey": "$response.body#/sessionKey"}),
        "switch": ("model_switch", {"sessionKey": "$response.body#/sessionKey"}),
    },
    ("/api/chat/model/quote", "post", "200"): {
        "confirm": (
            "model_switch",
            {
                "sessionKey": "$request.body#/sessionKey",
                "modelId": "$response.body#/quote/toModelId",
                "quoteId": "$response.body#/quote/id",
            },
        ),
    },
}


def add_links(result, generator, request, public):  # noqa: ARG001 - drf-spectacular's hook signature
    """Postprocessing hook: the LINKS above, on the responses they start from."""
    for (path, method, status), links in LINKS.items():
        response = result["paths"][path][method]["responses"][status]
        response["links"] = {
            name: {"operationId": operation_id, "requestBody": body} for name, (operation_id, body) in links.items()
        }
    return result
