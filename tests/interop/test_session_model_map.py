"""The real claude-agent-acp under vm_bridge tells a session what its picker ids mean: its
session/new model options feed the session's map, the usage of a turn confirms it exactly,
and a quote is priced on the models the agent runs (5.x for the pinned release), not on the
catalog's alias table."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from billing.catalog.selectors import model_resolve
from billing.models import UsageEvent
from billing.quotes.services import quote_draft
from billing.quotes.switch_context import switch_context_load
from billing.usage.ingestion import usage_ingest
from billing.usage.validation import usage_batch_parse
from sessions_app.model_truth import model_map_from_offer, session_usage_models_observe
from sessions_app.models import AgentSession, SessionStatus
from tests.conftest import client_for

from .bridge_harness import Bridge, UsageReceiver
from .conftest import AGENTS, claude_code_env

CURRENT = next(agent for agent in AGENTS if agent.key == "acp-current")


def _turns_under_bridge(*, node_modules, emulator, tmp_path):
    """session/new, then one turn on haiku: the offer, the billed models, the relayed records."""
    workdir = tmp_path / "app"
    workdir.mkdir()
    with UsageReceiver(token="unused") as receiver:
        bridge = Bridge(
            agent_cmd=["node", str(CURRENT.entry)],
            env=claude_code_env(emulator.url, tmp_path),
            workdir=tmp_path,
            usage_url=receiver.url,
            extra_agent_env=("DISABLE_AUTOUPDATER", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"),
        )
        receiver.token = bridge.token
        try:
            bridge.start()
            session = bridge.post("/session/new", {"cwd": str(workdir)}).json()
            sid = session["sessionId"]
            assert bridge.post("/session/set_model", {"sessionId": sid, "modelId": "haiku"}).status_code == 200
            before = len(emulator.requests())
            assert bridge.prompt(sid, "Build a todo app: say hi")[-1][0] == "done"
            billed = {r["model"] for r in emulator.requests()[before:]}
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not any(r["kind"] == "request" for r in receiver.records()):
                time.sleep(0.2)
        except Exception:
            print(bridge.log_tail())
            raise
        finally:
            bridge.stop()
    return session, billed, receiver.records()


@pytest.mark.node
@pytest.mark.django_db
def test_real_agent_model_options_feed_the_session_map(node_modules, emulator, tmp_path):
    offer, billed, records = _turns_under_bridge(node_modules=node_modules, emulator=emulator, tmp_path=tmp_path)
    now = timezone.now()

    offered = model_map_from_offer(available_models=offer["availableModels"], at=now)
    # What the options say haiku means is what the agent billed for the turn on haiku.
    assert {model_resolve(model_id=m, at=now).api_id for m in billed} == {offered["haiku"]["apiModel"]}
    assert offered["sonnet"]["apiModel"].startswith("claude-sonnet-5")
    print(f"{CURRENT.key} offers { ({k: v['apiModel'] for k, v in offered.items()}) }, billed {billed}")

    user = client_for("interop-user", "pro").user
    session = AgentSession.objects.create(
        user=user,
        provider="local",
        sandbox_id="interop",
        status=SessionStatus.READY,
        acp_session_id=offer["sessionId"],
        model_id="haiku",
        model_map=offered,
    )
    requests = [r for r in records if r["kind"] == "request"]
    assert requests and all(r["modelId"] == "haiku" for r in requests)
    usage_ingest(
        session_key=str(session.key),
        session_pk=session.pk,
        user=user,
        records=usage_batch_parse(requests, ttl_by_session={session.acp_session_id: session.cache_ttl}),
    )
    session_usage_models_observe(session=session, raw_records=requests)
    session.refresh_from_db()
    assert session.model_map["haiku"] == {**session.model_map["haiku"], "source": "usage"}
    assert set(UsageEvent.objects.filter(session_key=str(session.key)).values_list("model", flat=True)) == {
        offered["haiku"]["apiModel"]
    }

    draft = quote_draft(
        user=user,
        session=session,
        context=switch_context_load(session_pk=session.pk, session_key=str(session.key), now=now),
        to_model_id="sonnet",
        now=timezone.now(),
    )
    assert draft.version_from.api_model.api_id == offered["haiku"]["apiModel"]
    assert draft.version_to.api_model.api_id == offered["sonnet"]["apiModel"]
    # An estimate exactly when the two models count with different tokenizers.
    same_tokenizer = draft.version_from.api_model.tokenizer_family == draft.version_to.api_model.tokenizer_family
    assert draft.figures.prefix_from > 0 and ("tokenizer_estimate" in draft.figures.warnings) != same_tokenizer
