"""The quote's steady-state figures come from the session's own recent warm turns."""

import pytest

from tests.sessions_app.relay import minutes_ago, request_record, signed_post

pytestmark = pytest.mark.django_db


def _relay(client, bridge, records):
    assert signed_post(client, sandbox_id="static", key=bridge.token, records=records).status_code == 202


def _quote(client, key):
    response = client.post("/api/chat/model/quote", {"sessionKey": key, "modelId": "opus"}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["quote"]


def test_before_a_warm_turn_the_typical_turn_of_the_real_logs(pro_client, bridge):
    session = pro_client.post("/api/chat/sessions", format="json").json()
    _relay(pro_client, bridge, [request_record(session["sessionId"], "req_1", at=minutes_ago(1), write_5m=100_000)])

    quote = _quote(pro_client, session["sessionKey"])

    # Haiku 4.5 -> Opus 4.6, 100k warm, a turn of 774 written and 150 out (bench/turn_medians.py):
    # Opus 50,000 + 4,837.5 + 3,750 - Haiku (10,000 + 967.5 + 750) micro-dollars.
    assert quote["steadyStateDeltaUsdPerTurn"] == "0.046870"


def test_the_sessions_own_turns_once_it_has_warm_ones(pro_client, bridge):
    session = pro_client.post("/api/chat/sessions", format="json").json()
    sid = session["sessionId"]
    _relay(
        pro_client,
        bridge,
        [
            # The cold first turn writes the whole prompt: not a typical turn.
            request_record(sid, "req_1", at=minutes_ago(5), write_5m=20_000),
            request_record(sid, "req_2", at=minutes_ago(4), read=20_000, write_5m=300, output=50),
            request_record(sid, "req_3", at=minutes_ago(3), read=20_300, write_5m=500, output=80),
            request_record(sid, "req_4", at=minutes_ago(2), read=20_800, write_5m=700, output=120),
            # A sub-agent's requests are a conversation of their own.
            request_record(
                sid, "req_5", at=minutes_ago(1), read=9_000, write_5m=90_000, output=9_000, isSidechain=True
            ),
        ],
    )

    quote = _quote(pro_client, session["sessionKey"])

    # Medians: 500 written, 80 out; the conversation is 20,800 + 700 + 120 = 21,620 tokens.
    # Opus 10,810 + 3,125 + 2,000 - Haiku (2,162 + 625 + 400) micro-dollars.
    assert quote["prefixTokens"]["from"] == 21_620
    assert quote["steadyStateDeltaUsdPerTurn"] == "0.012748"
