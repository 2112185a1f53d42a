"""Each chat turn is stored as it ends (done, cancelled, client gone) and read back a page at a
time (GET /api/chat/sessions/{key}/turns) with what it cost: provisional from its `done` usage at
once, billed once the sandbox's relayed usage for it is in."""

import time
import uuid
from decimal import Decimal

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone

from sessions_app import services
from sessions_app.models import ChatTurn
from tests.conftest import client_for
from tests.sessions_app.relay import request_record, signed_post

from .api import sse_events

pytestmark = pytest.mark.django_db

# Haiku 4.5 list prices, USD per MTok (platform.claude.com pricing): input 1, output 5.
HAIKU_INPUT, HAIKU_OUTPUT = Decimal(1), Decimal(5)


def _micro(tokens: int, per_mtok: Decimal) -> Decimal:
    return Decimal(tokens) * per_mtok / 10**6


def _session(client) -> dict:
    response = client.post("/api/chat/sessions", format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def _chat(client, key: str, prompt: str) -> list[tuple[str, dict]]:
    response = client.post("/api/chat", {"sessionKey": key, "prompt": prompt}, format="json")
    assert response.status_code == 200
    return sse_events(b"".join(response.streaming_content).decode().splitlines())


def _turns(client, key: str, **params) -> dict:
    response = client.get(f"/api/chat/sessions/{key}/turns", params)
    assert response.status_code == 200, response.json()
    return response.json()


def _relay(client, bridge, records) -> None:
    response = signed_post(client, sandbox_id="static", key=bridge.token, records=records)
    assert response.status_code == 202, response.json()


def _is_error(response, status: int, code: str) -> bool:
    return response.status_code == status and response.json()["code"] == code


def test_a_turn_is_stored_as_it_ends_priced_at_once_then_as_billed(pro_client, bridge):
    bridge.turn_events = 3
    session = _session(pro_client)
    key, acp_id = session["sessionKey"], session["sessionId"]

    events = _chat(pro_client, key, "Build a todo app")

    assert events[-1][0] == "done" and events[-1][1]["turn"] == 1
    [turn] = _turns(pro_client, key)["turns"]
    assert turn["turn"] == 1 and turn["sessionId"] == acp_id and turn["modelId"] == "haiku"
    assert turn["prompt"] == "Build a todo app" and turn["text"] == "0 1 2 " and turn["textTruncated"] is False
    assert turn["stopReason"] == "end_turn" and turn["errorCode"] is None
    assert turn["usage"] == {"inputTokens": 10, "outputTokens": 5, "cachedReadTokens": 0, "cachedWriteTokens": 0}
    # The double's `done` usage (10 in, 5 out) on Haiku 4.5, until the relayed usage is in.
    provisional = _micro(10, HAIKU_INPUT) + _micro(5, HAIKU_OUTPUT)
    assert (turn["costSource"], Decimal(turn["costUsd"])) == ("provisional", provisional)
    assert len(turn["priceVersions"]) == 1 and turn["priceVersions"][0].startswith("claude-haiku-4-5@")

    # The relay brings the turn's two requests (and a request of another turn, not this one's).
    now = timezone.now()
    _relay(
        pro_client,
        bridge,
        [
            request_record(acp_id, "req_a", at=now, input_tokens=1_000, output=120, turn=1),
            request_record(acp_id, "req_b", at=now, input_tokens=2_000, output=80, turn=1),
            request_record(acp_id, "req_c", at=now, input_tokens=9_999, turn=2),
        ],
    )

    [turn] = _turns(pro_client, key)["turns"]
    billed = _micro(3_000, HAIKU_INPUT) + _micro(200, HAIKU_OUTPUT)
    assert (turn["costSource"], turn["costUsd"]) == ("billed", f"{billed:.6f}")
    assert len(turn["priceVersions"]) == 1 and turn["priceVersions"][0].startswith("claude-haiku-4-5@")


def test_turns_come_a_page_at_a_time_newest_first_by_cursor(pro_client, bridge):
    key = _session(pro_client)["sessionKey"]
    for n in range(1, 6):
        _chat(pro_client, key, f"prompt {n}")

    first = _turns(pro_client, key, pageSize=2)
    assert [t["prompt"] for t in first["turns"]] == ["prompt 5", "prompt 4"]
    assert first["previous"] is None and first["next"]

    _chat(pro_client, key, "prompt 6")  # a new turn does not shift the pages already handed out
    second = pro_client.get(first["next"]).json()
    assert [t["prompt"] for t in second["turns"]] == ["prompt 3", "prompt 2"]
    third = pro_client.get(second["next"]).json()
    assert [t["prompt"] for t in third["turns"]] == ["prompt 1"] and third["next"] is None
    back = pro_client.get(second["previous"]).json()
    assert [t["prompt"] for t in back["turns"]] == ["prompt 5", "prompt 4"]
    assert [t["turn"] for t in _turns(pro_client, key, pageSize=100)["turns"]] == [6, 5, 4, 3, 2, 1]


def test_turns_refuse_a_bad_page_size_or_cursor(pro_client, bridge):
    key = _session(pro_client)["sessionKey"]
    url = f"/api/chat/sessions/{key}/turns"
    for params in ({"pageSize": 0}, {"pageSize": 101}, {"pageSize": "many"}, {"pageSize": ""}, {"cursor": ""}):
        assert _is_error(pro_client.get(url, params), 400, "invalid_request"), params
    # A cursor it never gave: a page that does not exist.
    assert _is_error(pro_client.get(url, {"cursor": "nope"}), 404, "not_found")


def test_turns_of_another_users_session_are_404(pro_client, bridge):
    key = _session(pro_client)["sessionKey"]
    _chat(pro_client, key, "mine")
    stranger = client_for("stranger", "pro")

    assert _is_error(stranger.get(f"/api/chat/sessions/{key}/turns"), 404, "session_not_found")
    assert _is_error(stranger.get(f"/api/chat/sessions/{uuid.uuid4()}/turns"), 404, "session_not_found")
    assert _turns(pro_client, key)["turns"][0]["prompt"] == "mine"


def test_a_cancelled_turn_is_stored_with_what_was_streamed(pro_client, bridge):
    bridge.turn_events, bridge.turn_interval = 600, 0.05
    key = _session(pro_client)["sessionKey"]
    response = pro_client.post("/api/chat", {"sessionKey": key, "prompt": "go on and on"}, format="json")
    stream = iter(response.streaming_content)
    assert next(stream).startswith(b"event: update")

    assert pro_client.post("/api/chat/cancel", {"sessionKey": key}, format="json").status_code == 200
    events = sse_events(b"".join(stream).decode().splitlines())

    assert events[-1][0] == "done" and events[-1][1]["stopReason"] == "cancelled"
    [turn] = _turns(pro_client, key)["turns"]
    assert turn["stopReason"] == "cancelled" and turn["turn"] == 1
    assert turn["text"].startswith("0 ") and turn["costSource"] == "provisional"


# Closing a response ends its request, whose connection Django then closes: no test transaction.
@pytest.mark.django_db(transaction=True)
def test_a_turn_whose_client_went_away_is_stored_and_billed_when_its_usage_comes(pro_client, bridge):
    bridge.turn_events, bridge.turn_interval = 600, 0.05
    session = _session(pro_client)
    key, acp_id = session["sessionKey"], session["sessionId"]
    response = pro_client.post("/api/chat", {"sessionKey": key, "prompt": "never mind"}, format="json")
    stream = iter(response.streaming_content)
    assert next(stream).startswith(b"event: update")

    response.close()  # as a WSGI server closes the response of a client that went away

    [turn] = _turns(pro_client, key)["turns"]
    assert turn["stopReason"] == "disconnected" and turn["prompt"] == "never mind" and turn["text"] == "0 "
    assert turn["turn"] == 1  # named by the update that got through
    assert turn["usage"] is None and (turn["costSource"], turn["costUsd"]) == (None, None)

    # The bridge relays what the stopped turn used, as for any turn.
    _relay(pro_client, bridge, [request_record(acp_id, "req_gone", at=timezone.now(), input_tokens=400, turn=1)])
    [turn] = _turns(pro_client, key)["turns"]
    assert (turn["costSource"], turn["costUsd"]) == ("billed", f"{_micro(400, HAIKU_INPUT):.6f}")


@pytest.mark.django_db(transaction=True)
def test_a_turn_whose_response_was_closed_unread_is_stored(pro_client, bridge):
    bridge.turn_events, bridge.turn_interval = 600, 0.05
    key = _session(pro_client)["sessionKey"]
    response = pro_client.post("/api/chat", {"sessionKey": key, "prompt": "never mind"}, format="json")

    response.close()  # the client went away before the server's first send

    [turn] = _turns(pro_client, key)["turns"]
    assert (turn["stopReason"], turn["prompt"], turn["text"], turn["turn"]) == ("disconnected", "never mind", "0 ", 1)


def test_a_turn_refused_before_it_started_is_not_stored(pro_client, bridge):
    key = _session(pro_client)["sessionKey"]
    bridge.fail(409, "agent_session_lost", times=1)

    response = pro_client.post("/api/chat", {"sessionKey": key, "prompt": "hello?"}, format="json")

    assert response.status_code == 409
    assert _turns(pro_client, key)["turns"] == []


def test_a_failed_write_of_the_turn_costs_the_client_nothing(pro_client, bridge, monkeypatch, caplog):
    def fail(**kwargs):
        raise services.DatabaseError("the database is away")

    monkeypatch.setattr(ChatTurn.objects, "create", fail)
    key = _session(pro_client)["sessionKey"]

    events = _chat(pro_client, key, "still there?")

    assert [name for name, _ in events] == ["update", "done"]
    assert "could not store a turn" in caplog.text
    monkeypatch.undo()
    assert _turns(pro_client, key)["turns"] == []


def _wait_for(condition, timeout: float):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return found


@pytest.mark.django_db(transaction=True)
def test_on_the_asgi_server_a_client_gone_mid_turn_leaves_its_turn_stored(pro_client, bridge, asgi_live_server):
    bridge.turn_events, bridge.turn_interval = 600, 0.05
    token = pro_client._credentials["HTTP_AUTHORIZATION"]
    api = httpx.Client(base_url=asgi_live_server.url, headers={"Authorization": token}, timeout=10)
    key = api.post("/api/chat/sessions").json()["sessionKey"]

    with api.stream("POST", "/api/chat", json={"sessionKey": key, "prompt": "long job"}) as response:
        assert next(response.iter_lines()) == "event: update"
    # Before its first event, too: the prompt reached the agent.
    bridge.delay = 1.0
    with pytest.raises(httpx.ReadTimeout):
        api.post("/api/chat", json={"sessionKey": key, "prompt": "hurry"}, timeout=0.3)

    turns = _wait_for(lambda: len(api.get(f"/api/chat/sessions/{key}/turns").json()["turns"]) == 2 and (
        api.get(f"/api/chat/sessions/{key}/turns").json()["turns"]), timeout=5.0)  # fmt: skip
    assert [(t["prompt"], t["stopReason"], t["turn"]) for t in turns] == [
        ("hurry", "disconnected", None),
        ("long job", "disconnected", 1),
    ]
    assert turns[1]["text"].startswith("0 ")


def test_the_admin_shows_the_turns_read_only(admin_client, pro_client, bridge):
    key = _session(pro_client)["sessionKey"]
    _chat(pro_client, key, "hello admin")
    turn = ChatTurn.objects.get()

    listing = admin_client.get(reverse("admin:sessions_app_chatturn_changelist"))

    assert listing.status_code == 200
    assert "&lt;$0.0001" in listing.content.decode()  # $0.000035, by the one money rule
    page = admin_client.get(reverse("admin:sessions_app_chatturn_change", args=[turn.pk]))
    assert page.status_code == 200 and "hello admin" in page.content.decode()
    assert admin_client.get(reverse("admin:sessions_app_chatturn_add")).status_code == 403
