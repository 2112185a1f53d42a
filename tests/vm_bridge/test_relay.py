"""Usage relay: signed batches, retries, the disk spool, transcript records, rate limits."""

import hashlib
import hmac
import json
import re
import time

from .conftest import TOKEN, Receiver, free_port

FAST_RELAY = ("--relay-backoff", "0.2", "--relay-backoff-max", "0.4")


def relay_args(receiver: Receiver, sandbox: str = "sbx_test") -> tuple[str, ...]:
    return ("--usage-url", receiver.url, "--sandbox-id", sandbox, *FAST_RELAY)


def verify(request: dict) -> dict:
    """Check the request the way the backend must, and return its body."""
    h = {k.lower(): v for k, v in request["headers"].items()}
    assert h["content-type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f]{32}", h["x-mk0r-nonce"])
    assert abs(int(h["x-mk0r-timestamp"]) - time.time()) < 60
    message = h["x-mk0r-timestamp"].encode() + b"." + h["x-mk0r-nonce"].encode() + b"." + request["body"]
    expected = "sha256=" + hmac.new(TOKEN.encode(), message, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(h["x-mk0r-signature"], expected)
    body = json.loads(request["body"])
    assert body["sandboxId"] == h["x-mk0r-sandbox"]
    return body


def test_turn_usage_transcript_and_rate_limits_are_relayed_signed(start_bridge, receiver):
    bridge = start_bridge(*relay_args(receiver))
    # No transcript: one acp_turn record from PromptResponse.usage.
    plain = bridge.new_session(modelId="haiku")["sessionId"]
    bridge.prompt(plain, "hello")
    receiver.wait_for(lambda: len(receiver.accepted_records()) >= 1)
    body = verify(receiver.requests[0])
    assert body["sandboxId"] == "sbx_test"
    assert body["records"] == [
        {
            "id": f"{plain}:turn:1",
            "kind": "request",
            "source": "acp_turn",
            "sessionId": plain,
            "turn": 1,
            "model": None,
            "modelId": "haiku",
            "timestamp": body["records"][0]["timestamp"],
            "usage": {
                "input_tokens": 10,
                "cache_creation_input_tokens": 50,
                "cache_read_input_tokens": 100,
                "output_tokens": 5,
            },
        }
    ]

    # With a transcript: one record per requestId (the fullest line), each sent once.
    sid = bridge.new_session(modelId="opus")["sessionId"]
    bridge.prompt(sid, "transcript")
    receiver.wait_for(lambda: any(r["sessionId"] == sid for r in receiver.accepted_records()))
    bridge.prompt(sid, "transcript")
    receiver.wait_for(lambda: sum(r["sessionId"] == sid for r in receiver.accepted_records()) >= 4)
    bridge.prompt(sid, "ratelimit")
    receiver.wait_for(lambda: any(r["kind"] == "rate_limit" for r in receiver.accepted_records()))

    records = [r for r in receiver.accepted_records() if r["sessionId"] == sid]
    requests = [r for r in records if r["kind"] == "request"]
    # The rate-limit turn wrote no transcript lines: the agent's total for it stands in.
    assert [(r["id"], r["source"], r["turn"]) for r in requests] == [
        ("req_t1a", "transcript", 1),
        ("req_t1b", "transcript", 1),
        ("req_t2a", "transcript", 2),
        ("req_t2b", "transcript", 2),
        (f"{sid}:turn:3", "acp_turn", 3),
    ]
    first = requests[0]
    assert first["requestId"] == "req_t1a" and first["messageId"] == "msg_req_t1a"
    assert first["model"] == "claude-opus-4-7" and first["modelId"] == "opus"
    assert first["usage"]["output_tokens"] == 250  # the last line of the request, not the first
    assert first["usage"]["cache_creation"] == {"ephemeral_5m_input_tokens": 1200, "ephemeral_1h_input_tokens": 0}
    assert first["isSidechain"] is False

    [rate] = [r for r in records if r["kind"] == "rate_limit"]
    assert rate["id"] == f"{sid}:rl:1763805600:seven_day:0.42"
    assert rate["resetsAt"] == 1763805600 and rate["utilization"] == 0.42
    assert rate["rateLimitType"] == "seven_day"
    for request in receiver.requests:
        verify(request)


def test_every_event_of_a_turn_names_the_turn_its_usage_records_name(start_bridge, receiver):
    """So that whoever relays the stream can find the turn's billed usage, even of a turn whose
    `done` it never sees."""
    bridge = start_bridge(*relay_args(receiver))
    sid = bridge.new_session(modelId="haiku")["sessionId"]
    first, second = bridge.prompt(sid, "hello"), bridge.prompt(sid, "again")

    assert [(name, data["turn"]) for name, data in first + second] == [
        ("update", 1), ("done", 1), ("update", 2), ("done", 2)
    ]  # fmt: skip
    receiver.wait_for(lambda: len(receiver.accepted_records()) >= 2)
    assert [(r["id"], r["turn"]) for r in receiver.accepted_records()] == [(f"{sid}:turn:1", 1), (f"{sid}:turn:2", 2)]


def test_retried_with_backoff_on_503_and_moved_aside_on_400(start_bridge, receiver):
    receiver.statuses = [503, 503, 202, 400]
    bridge = start_bridge(*relay_args(receiver))
    sid = bridge.new_session()["sessionId"]
    bridge.prompt(sid, "hello")
    receiver.wait_for(lambda: len(receiver.accepted_records()) == 1)
    attempts = receiver.requests
    assert [a["status"] for a in attempts] == [503, 503, 202]
    assert len({a["body"] for a in attempts}) == 1  # same batch, same record ids
    assert len({a["headers"]["X-Mk0r-Nonce"] for a in attempts}) == 3  # fresh nonce per attempt
    gaps = [b["at"] - a["at"] for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[0] >= 0.18 and gaps[1] >= 0.36  # exponential
    assert not list((bridge.spool).glob("*.json"))

    # A batch the backend says it can never accept is moved aside, never retried.
    bridge.prompt(sid, "again")
    receiver.wait_for(lambda: len(receiver.requests) == 4)
    deadline = time.monotonic() + 3
    while not list((bridge.spool / "rejected").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(list((bridge.spool / "rejected").glob("*.json"))) == 1
    assert not list(bridge.spool.glob("*.json"))
    time.sleep(0.5)
    assert len(receiver.requests) == 4


def test_spooled_while_backend_down_and_sent_after_restart(start_bridge, tmp_path):
    spool = tmp_path / "spool"
    receiver = Receiver(port=free_port())  # nothing listens there yet
    first = start_bridge(*relay_args(receiver), sub="first", spool=spool)
    sid = first.new_session()["sessionId"]
    first.prompt(sid, "hello")
    first.prompt(sid, "again")
    deadline = time.monotonic() + 5
    while len(list(spool.glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(list(spool.glob("*.json"))) == 2
    first.stop()
    assert len(list(spool.glob("*.json"))) == 2  # a failed flush keeps the batches

    receiver.start()
    try:
        second = start_bridge(*relay_args(receiver), sub="second", spool=spool)
        receiver.wait_for(lambda: len(receiver.accepted_records()) == 2)
        assert [r["id"] for r in receiver.accepted_records()] == [f"{sid}:turn:1", f"{sid}:turn:2"]
        for request in receiver.requests:
            verify(request)
        assert not list(spool.glob("*.json"))

        # The backend goes away and comes back while the bridge runs.
        receiver.stop()
        sid2 = second.new_session()["sessionId"]
        second.prompt(sid2, "hello")
        time.sleep(0.5)
        assert len(list(spool.glob("*.json"))) == 1
        receiver.start()
        receiver.wait_for(lambda: any(r["sessionId"] == sid2 for r in receiver.accepted_records()))
    finally:
        receiver.stop()
