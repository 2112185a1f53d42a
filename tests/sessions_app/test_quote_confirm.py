"""The preflight quote and the confirmed switch on POST /api/chat/model."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from billing.models import Quote, SwitchRecord
from sessions_app.models import AgentSession
from tests.conftest import client_for
from tests.sessions_app.relay import minutes_ago, request_record, signed_post

pytestmark = pytest.mark.django_db


def _warm_session(client, bridge, *, prefix=100_000, model="claude-haiku-4-5", minutes=1.0, ttl="5m") -> dict:
    """A session whose last turn (on haiku) cached a `prefix`-token conversation a minute ago."""
    session = client.post("/api/chat/sessions", format="json").json()
    written = {"write_1h": prefix} if ttl == "1h" else {"write_5m": prefix}
    record = request_record(
        session["sessionId"], f"req_{session['sessionId']}", at=minutes_ago(minutes), model=model, **written
    )
    assert signed_post(client, sandbox_id="static", key=bridge.token, records=[record]).status_code == 202
    return session


def _quote(client, key, model_id="opus"):
    return client.post("/api/chat/model/quote", {"sessionKey": key, "modelId": model_id}, format="json")


def _switch(client, key, model_id="opus", quote_id=None):
    body = {"sessionKey": key, "modelId": model_id, **({"quoteId": quote_id} if quote_id else {})}
    return client.post("/api/chat/model", body, format="json")


def test_quote_for_a_warm_100k_conversation(pro_client, bridge):
    """Haiku 4.5 -> Opus 4.6, 5-minute TTL, 100k tokens warm on haiku:
    stay = 100k read at $0.10/MTok = $0.01; switch = 100k written at $6.25/MTok = $0.625;
    tax = $0.615, all of it cache rebuild (same tokenizer, and the rate difference of
    staying-warm-on-opus would be 100k * ($0.50 - $0.10) = $0.04)."""
    session = _warm_session(pro_client, bridge)

    response = _quote(pro_client, session["sessionKey"])

    assert response.status_code == 200, response.json()
    quote = response.json()["quote"]
    assert quote["fromModelId"] == "haiku" and quote["toModelId"] == "opus"
    assert quote["currency"] == "USD" and quote["ttl"] == "5m"
    assert quote["prefixTokens"] == {
        "from": 100_000,
        "to": 100_000,
        "toLow": 100_000,
        "toHigh": 100_000,
        "measured": None,
    }
    assert quote["cacheState"] == {"from": "warm", "to": "none"}
    assert quote["nextTurn"] == {"stayUsd": "0.010000", "switchUsd": "0.625000"}
    assert quote["taxUsd"] == "0.615000"
    assert quote["breakdown"] == {"rateDeltaUsd": "0.040000", "cacheRebuildUsd": "0.575000"}
    assert quote["capPercent"] is None  # metered user
    assert quote["priceVersion"]["from"].startswith("claude-haiku-4-5@")
    assert quote["priceVersion"]["to"].startswith("claude-opus-4-6@")
    assert quote["breakEvenTurns"] is None  # opus never pays back against haiku
    assert quote["ttftPenaltyMs"] > 0
    stored = Quote.objects.get(pk=quote["id"])
    assert stored.tax_usd == Decimal("0.615000")
    assert timedelta(seconds=110) < stored.expires_at - timezone.now() <= timedelta(seconds=120)


def test_oauth_users_see_their_cap_share(db, bridge):
    client = client_for("oauth-max", "max5", billing="oauth")
    session = _warm_session(client, bridge, ttl="1h")
    quote = _quote(client, session["sessionKey"]).json()["quote"]
    assert quote["ttl"] == "1h"
    # 1h entries: the rebuild writes at $10/MTok on opus = $1.00, stay reads at $0.10 = $0.01.
    assert quote["taxUsd"] == "0.990000"
    # Cap units are API-equivalent dollars: 0.99 of the Max 5x estimate's 250 per week.
    assert quote["capPercent"] == "0.3960"


def test_costly_switch_without_quote_needs_confirmation(pro_client, bridge):
    session = _warm_session(pro_client, bridge)
    calls = len(bridge.calls)

    response = _switch(pro_client, session["sessionKey"])

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "confirmation_required"
    assert body["quote"]["taxUsd"] == "0.615000" and body["quote"]["id"]
    assert len(bridge.calls) == calls  # nothing forwarded
    assert AgentSession.objects.get(key=session["sessionKey"]).model_id == "haiku"
    assert not SwitchRecord.objects.exists()


def test_confirmed_quote_switches_once(pro_client, bridge):
    session = _warm_session(pro_client, bridge)
    quote = _quote(pro_client, session["sessionKey"]).json()["quote"]

    confirmed = _switch(pro_client, session["sessionKey"], quote_id=quote["id"])
    again = _switch(pro_client, session["sessionKey"], quote_id=quote["id"])

    assert confirmed.status_code == 200, confirmed.json()
    assert confirmed.json()["modelId"] == "opus" and confirmed.json()["quote"]["id"] == quote["id"]
    assert again.status_code == 409 and again.json()["code"] == "quote_used"
    record = SwitchRecord.objects.get()
    assert (record.outcome, record.confirmed, record.quoted_tax_usd) == ("applied", True, Decimal("0.615000"))
    assert record.quote_payload == quote
    assert record.price_version_to.label == quote["priceVersion"]["to"]
    assert Quote.objects.get(pk=quote["id"]).used_at is not None


def test_expired_quote_is_410(pro_client, bridge):
    session = _warm_session(pro_client, bridge)
    quote = _quote(pro_client, session["sessionKey"]).json()["quote"]
    Quote.objects.filter(pk=quote["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = _switch(pro_client, session["sessionKey"], quote_id=quote["id"])

    assert response.status_code == 410 and response.json()["code"] == "quote_expired"
    assert AgentSession.objects.get(key=session["sessionKey"]).model_id == "haiku"


def test_quote_goes_stale_when_the_conversation_grows(pro_client, bridge):
    session = _warm_session(pro_client, bridge)
    quote = _quote(pro_client, session["sessionKey"]).json()["quote"]
    grown = request_record(session["sessionId"], "req_next", at=minutes_ago(0.1), read=100_000, write_5m=100_000)
    assert signed_post(pro_client, sandbox_id="static", key=bridge.token, records=[grown]).status_code == 202

    response = _switch(pro_client, session["sessionKey"], quote_id=quote["id"])

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "quote_stale"
    assert body["quote"]["id"] != quote["id"]
    assert Decimal(body["quote"]["taxUsd"]) > Decimal(quote["taxUsd"])
    assert AgentSession.objects.get(key=session["sessionKey"]).model_id == "haiku"
    # The fresh quote is kept and confirms.
    assert _switch(pro_client, session["sessionKey"], quote_id=body["quote"]["id"]).status_code == 200


def test_quote_for_another_switch_is_409_and_anothers_quote_404(pro_client, bridge):
    session = _warm_session(pro_client, bridge)
    quote = _quote(pro_client, session["sessionKey"], "opus").json()["quote"]

    mismatch = _switch(pro_client, session["sessionKey"], "sonnet", quote_id=quote["id"])
    other = client_for("other", "pro")
    other_session = other.post("/api/chat/sessions", format="json").json()
    foreign = _switch(other, other_session["sessionKey"], "opus", quote_id=quote["id"])

    assert mismatch.status_code == 409 and mismatch.json()["code"] == "quote_mismatch"
    assert foreign.status_code == 404 and foreign.json()["code"] == "quote_not_found"


def test_auto_confirm_threshold(pro_client, bridge):
    subscription = pro_client.user.subscription
    subscription.auto_confirm_usd = Decimal("1.00")
    subscription.save()
    session = _warm_session(pro_client, bridge)

    response = _switch(pro_client, session["sessionKey"])

    assert response.status_code == 200
    assert response.json()["quote"]["taxUsd"] == "0.615000" and response.json()["quote"]["id"] is None
    record = SwitchRecord.objects.get()
    assert record.confirmed is False and record.quote is None


def test_failed_forward_is_recorded_and_keeps_the_quote(pro_client, bridge):
    session = _warm_session(pro_client, bridge)
    quote = _quote(pro_client, session["sessionKey"]).json()["quote"]
    bridge.fail(500, "agent_error", times=1)

    failed = _switch(pro_client, session["sessionKey"], quote_id=quote["id"])
    retried = _switch(pro_client, session["sessionKey"], quote_id=quote["id"])

    assert failed.status_code == 502 and failed.json()["code"] == "agent_error"
    assert retried.status_code == 200
    outcomes = list(SwitchRecord.objects.order_by("created_at").values_list("outcome", "error_code"))
    assert outcomes == [("failed", "agent_error"), ("applied", "")]


def test_ledger_lists_switches_with_their_reconciled_cost(pro_client, bridge):
    session = _warm_session(pro_client, bridge, minutes=0.5)
    quote = _quote(pro_client, session["sessionKey"]).json()["quote"]
    assert _switch(pro_client, session["sessionKey"], quote_id=quote["id"]).status_code == 200
    first_on_opus = request_record(
        session["sessionId"],
        "req_opus",
        at=timezone.now() + timedelta(seconds=1),
        model="claude-opus-4-6",
        write_5m=100_000,
    )
    assert signed_post(pro_client, sandbox_id="static", key=bridge.token, records=[first_on_opus]).status_code == 202

    response = pro_client.get(f"/api/chat/sessions/{session['sessionKey']}/switches")

    assert response.status_code == 200
    (row,) = response.json()["switches"]
    assert (row["fromModelId"], row["toModelId"], row["outcome"]) == ("haiku", "opus", "applied")
    assert row["quotedTaxUsd"] == "0.615000"
    # The real first turn on opus wrote the 100k again: $0.625, against $0.01 for staying.
    assert row["actualTaxUsd"] == "0.615000" and row["quoteErrorUsd"] == "0.000000"


def test_switching_back_inside_the_ttl_warns_flapping_and_reads_the_warm_prefix(pro_client, bridge):
    session = _warm_session(pro_client, bridge, minutes=0.5)
    to_sonnet = _quote(pro_client, session["sessionKey"], "sonnet").json()["quote"]
    assert _switch(pro_client, session["sessionKey"], "sonnet", quote_id=to_sonnet["id"]).status_code == 200

    back = _quote(pro_client, session["sessionKey"], "haiku").json()["quote"]

    assert "flapping" in back["warnings"] and "switch_back_warm" in back["warnings"]
    assert back["cacheState"]["to"] == "warm"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_confirms_of_one_quote_have_one_winner(bridge):
    if connection.vendor != "postgresql":
        pytest.skip("a race needs PostgreSQL (set DATABASE_URL)")
    client = client_for("racer", "pro")
    session = _warm_session(client, bridge)
    quote = _quote(client, session["sessionKey"]).json()["quote"]
    token = client._credentials["HTTP_AUTHORIZATION"]
    results: list[int] = []
    start = threading.Barrier(8)

    def confirm():
        from django.db import connections
        from rest_framework.test import APIClient

        racer = APIClient()
        racer.credentials(HTTP_AUTHORIZATION=token)
        start.wait()
        try:
            results.append(_switch(racer, session["sessionKey"], quote_id=quote["id"]).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=confirm) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [200] + [409] * 7
    assert SwitchRecord.objects.filter(outcome="applied").count() == 1
    assert [path for path in bridge.paths() if path == "/session/set_model"].__len__() == 2  # create + one switch
