"""The agents these tests run offer Claude Code's February 2026 lineup.

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
