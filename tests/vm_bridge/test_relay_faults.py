"""The relay under a failing backend: a poison batch moves aside without holding up the rest,
an outage moves nothing aside, big turns are split, and a late transcript names its turn."""

import json
import time

from vm_bridge.relay import MAX_BATCH_BYTES, MAX_BATCH_RECORDS, Relay, _batches

from .conftest import Receiver
from .test_relay import relay_args, verify

BACKOFF, BACKOFF_MAX, ATTEMPTS = 0.2, 0.4, 3
# The time a poison batch may hold the next one: the backoffs between its attempts.
BUDGET = sum(min(BACKOFF * 2**n, BACKOFF_MAX) for n in range(ATTEMPTS - 1))
FAULTY_RELAY = ("--relay-backoff", str(BACKOFF), "--relay-backoff-max", str(BACKOFF_MAX))


def _args(receiver: Receiver) -> tuple[str, ...]:
    return (*relay_args(receiver), *FAULTY_RELAY, "--relay-max-attempts", str(ATTEMPTS))


def _attempts(receiver: Receiver, session_id: str) -> list[dict]:
    with receiver.lock:
        return [r for r in receiver.requests if session_id.encode() in r["body"]]


def _spool(bridge) -> dict:
    return bridge.client.get("/health").json()["usageSpool"]


def _spool_settles(bridge, expected: dict, timeout: float = 5.0) -> dict:
    """The spool's counters once the bridge has dealt with the backend's last answer: the
    receiver sees a request before the bridge has read the answer and moved its file."""
    deadline = time.monotonic() + timeout
    while (spool := _spool(bridge)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return spool


def test_a_poison_batch_moves_aside_within_its_budget_and_the_rest_flow(start_bridge, receiver):
    bridge = start_bridge(*_args(receiver))
    poison = bridge.new_session()["sessionId"]
    good = bridge.new_session()["sessionId"]
    receiver.status_for = lambda body: 500 if poison.encode() in body else 202

    bridge.prompt(poison, "hello")
    bridge.prompt(good, "hello")
    receiver.wait_for(lambda: any(r["sessionId"] == good for r in receiver.accepted_records()))

    first_poison_attempt = _attempts(receiver, poison)[0]["at"]
    [delivered] = [r for r in _attempts(receiver, good) if r["status"] == 202]
    # Request round trips and the turn itself are the slack on top of the budget.
    assert delivered["at"] - first_poison_attempt <= BUDGET + 1.0, (BUDGET, delivered["at"] - first_poison_attempt)
    assert len(_attempts(receiver, poison)) >= ATTEMPTS
    assert all(r["status"] == 500 for r in _attempts(receiver, poison))

    deadline = time.monotonic() + 3
    while not list((bridge.spool / "failed").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    [aside] = list((bridge.spool / "failed").glob("*.json"))
    assert json.loads(aside.read_bytes())["records"][0]["sessionId"] == poison  # kept, whole
    expected = {"depth": 0, "movedAside": 1, "failed": 1, "rejected": 0}
    assert _spool_settles(bridge, expected) == expected
    assert "moved to failed/" in bridge.log()

    # Later turns flow at once, and the batch moved aside is not tried again.
    tried = len(_attempts(receiver, poison))
    started = time.monotonic()
    bridge.prompt(good, "again")
    receiver.wait_for(lambda: sum(r["sessionId"] == good for r in receiver.accepted_records()) == 2)
    assert time.monotonic() - started < 1.5
    assert len(_attempts(receiver, poison)) == tried
    for request in receiver.requests:
        verify(request)


def test_while_every_batch_fails_nothing_is_moved_aside(start_bridge, receiver):
    receiver.status_for = lambda body: 500
    bridge = start_bridge(*_args(receiver))
    sid = bridge.new_session()["sessionId"]
    bridge.prompt(sid, "hello")
    bridge.prompt(sid, "again")
    # Well past the budget: the oldest batch has been refused more than ATTEMPTS times.
    receiver.wait_for(lambda: len(receiver.requests) >= 2 * ATTEMPTS + 2)
    assert not list((bridge.spool / "failed").glob("*.json"))
    assert _spool(bridge) == {"depth": 2, "movedAside": 0, "failed": 0, "rejected": 0}

    receiver.status_for = None  # the backend recovers: everything arrives, in order
    receiver.wait_for(lambda: len(receiver.accepted_records()) == 2)
    assert [r["id"] for r in receiver.accepted_records()] == [f"{sid}:turn:1", f"{sid}:turn:2"]
    expected = {"depth": 0, "movedAside": 0, "failed": 0, "rejected": 0}
    assert _spool_settles(bridge, expected) == expected


def test_a_big_turn_is_spooled_in_batches_under_the_limits(tmp_path):
    records = [{"id": f"req_{i}", "kind": "request", "pad": "x" * (50 + i % 700)} for i in range(1500)]
    batches = _batches(records)
    assert [r for batch in batches for r in batch] == records
    assert len(batches) > 1
    for batch in batches:
        assert len(batch) <= MAX_BATCH_RECORDS
        assert len(json.dumps({"sandboxId": "s", "records": batch}, separators=(",", ":"))) <= MAX_BATCH_BYTES + 64

    relay = Relay(url="http://127.0.0.1:9/usage", sandbox_id="sbx", key="k", spool_dir=tmp_path)
    relay.enqueue(records)
    spooled = [json.loads(p.read_bytes())["records"] for p in relay.pending()]
    assert [r for batch in spooled for r in batch] == records  # the spool's order is the turn's


def test_a_transcript_that_appears_late_names_the_turn_its_acp_record_stood_for(start_bridge, receiver):
    bridge = start_bridge(*relay_args(receiver))  # transcript wait 0.6 s
    sid = bridge.new_session(modelId="opus")["sessionId"]
    # The agent writes turn 1's lines 2 s after the turn: well after the bridge's wait, even on a
    # loaded machine.
    bridge.prompt(sid, "late-transcript 2.0")
    receiver.wait_for(lambda: len(receiver.accepted_records()) == 1)
    [stand_in] = receiver.accepted_records()
    assert (stand_in["id"], stand_in["source"], stand_in["turn"]) == (f"{sid}:turn:1", "acp_turn", 1)

    transcript = bridge.claude_dir / "projects" / "-work-app" / f"{sid}.jsonl"
    deadline = time.monotonic() + 10
    while not (transcript.exists() and "req_t1b" in transcript.read_text()):
        assert time.monotonic() < deadline, "the agent did not write turn 1's lines"
        time.sleep(0.05)
    bridge.prompt(sid, "hello")
    receiver.wait_for(lambda: len(receiver.accepted_records()) == 4)
    later = receiver.accepted_records()[1:]
    assert [(r["id"], r["source"], r["turn"]) for r in later] == [
        ("req_t1a", "transcript", 1),
        ("req_t1b", "transcript", 1),
        (f"{sid}:turn:2", "acp_turn", 2),
    ]
    assert later[0]["modelId"] == "opus" and later[0]["model"] == "claude-opus-4-7"


def test_a_record_the_backend_refuses_is_set_aside_alone(start_bridge, receiver):
    def backend(body: bytes):
        records = json.loads(body)["records"]
        for index, record in enumerate(records):
            if record["kind"] == "rate_limit":  # say the backend cannot take this one
                return 400, {"code": "invalid_usage_record", "message": "bad", "extra": {"index": index}}
        return 202

    receiver.status_for = backend
    bridge = start_bridge(*_args(receiver))
    sid = bridge.new_session()["sessionId"]
    bridge.prompt(sid, "ratelimit")  # one batch: the turn's usage and a rate-limit reading
    receiver.wait_for(lambda: len(receiver.accepted_records()) == 1)

    assert [r["id"] for r in receiver.accepted_records()] == [f"{sid}:turn:1"]
    assert len(json.loads(receiver.requests[0]["body"])["records"]) == 2
    expected = {"depth": 0, "movedAside": 1, "failed": 0, "rejected": 1}
    settled = _spool_settles(bridge, expected)
    [aside] = list((bridge.spool / "rejected").glob("*.json"))
    assert [r["kind"] for r in json.loads(aside.read_bytes())["records"]] == ["rate_limit"]
    assert settled == expected
