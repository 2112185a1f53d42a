"""The agents these tests run, and the local stack some of them run on.

The local stack: the local provider starts vm_bridge as a subprocess, which runs the devstack
reference agent over ACP stdio, which calls the devstack emulator over HTTP; the bridge's usage
relay posts signed records back to the service on a real ASGI server.

The agents offer Claude Code's February 2026 lineup.

The bridge double and the reference agent (devstack/agent/options.py) map `haiku` to Haiku 4.5,
`sonnet` and `default` to Sonnet 4.6 and `opus` to Opus 4.6, and their turns report those
models. A session's picker ids mean what its agent says; where nothing has said it yet the
catalog's dated aliases are the fallback, and by today those name the 5.5 models. So the
fallback is pinned to the agents' lineup from just after the catalog's last alias change (the
tests' sessions run now, a few of their records carry dates of November 2026).
"""

from datetime import timedelta

import pytest
from django.db.models import Max
from django.test import override_settings

from sessions_app.sandboxes import local

AGENT_LINEUP = {
    "haiku": "claude-haiku-4-5",
    "sonnet": "claude-sonnet-4-6",
    "sonnet[1m]": "claude-sonnet-4-6",
    "opus": "claude-opus-4-6",
    "opus[1m]": "claude-opus-4-6",
    "default": "claude-sonnet-4-6",
}


@pytest.fixture(autouse=True)
def _aliases_of_the_agents_lineup(request):
    if not {"db", "transactional_db", "live_server"} & set(request.fixturenames) and not (
        request.node.get_closest_marker("django_db")
    ):
        return
    request.getfixturevalue("_reference_data")  # after a flush, the catalog is back first
    from billing.models import ApiModel, ModelAlias

    since = ModelAlias.objects.aggregate(last=Max("effective_from"))["last"] + timedelta(seconds=1)
    models = {m.api_id: m for m in ApiModel.objects.filter(api_id__in=AGENT_LINEUP.values())}
    for alias, api_id in AGENT_LINEUP.items():
        ModelAlias.objects.create(
            alias=alias,
            effective_from=since,
            api_model=models[api_id],
            long_context=alias.endswith("[1m]"),
            notes="The test agents' lineup (devstack/agent/options.py).",
        )


@pytest.fixture(scope="module")
def sandbox_root(tmp_path_factory):
    """The local sandboxes of one test module, and their emulator."""
    root = tmp_path_factory.mktemp("sandboxes")
    yield root
    with override_settings(LOCAL_SANDBOX_ROOT=root):
        local.local_stack_stop()  # also the bridges of sessions a failed test left open


@pytest.fixture
def local_stack(settings, sandbox_root, monkeypatch, asgi_live_server):
    """New sessions start on the local stack, which relays usage to `asgi_live_server`."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    settings.SANDBOX_PROVIDER = "local"
    settings.LOCAL_SANDBOX_ROOT = sandbox_root
    settings.PUBLIC_BASE_URL = asgi_live_server.url
    settings.BRIDGE_READ_TIMEOUT = 20.0
    # The token count of a quote across tokenizers: on a loaded test machine it may take longer
    # than the production budget, and these tests want the count, not the fallback.
    settings.BRIDGE_COUNT_TOKENS_TIMEOUT = 5.0
    return sandbox_root
