"""Transcript reading on real Claude Code transcripts (shared data) and on partial writes."""

import json
import shutil
from pathlib import Path

import pytest

from vm_bridge.relay import sign
from vm_bridge.transcript import TranscriptReader, transcript_record

LOGS = Path(__file__).resolve().parents[3] / "shared" / "data" / "claude-code-logs"
SAMPLE = "213md-my-profile-site__00b7d024-5c39-470c-bbce-4b5ad186fb14.jsonl"


def _place(tmp_path: Path, session_id: str, text: str) -> Path:
    path = tmp_path / "projects" / "-work-app" / f"{session_id}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.skipif(not (LOGS / SAMPLE).exists(), reason="shared transcript data not present")
def test_real_transcript_one_record_per_request(tmp_path):
    sid = "00b7d024-5c39-470c-bbce-4b5ad186fb14"
    dest = tmp_path / "projects" / "-work-app" / f"{sid}.jsonl"
    dest.parent.mkdir(parents=True)
    shutil.copy(LOGS / SAMPLE, dest)
    lines = [json.loads(line) for line in dest.read_text().splitlines()]
    assistant = [x for x in lines if x["type"] == "assistant" and x["message"].get("model") != "<synthetic>"]
    keys = {x.get("requestId") or x["message"]["id"] for x in assistant}
    max_out = {}
    for x in assistant:
        key = x.get("requestId") or x["message"]["id"]
        max_out[key] = max(max_out.get(key, 0), x["message"]["usage"]["output_tokens"])

    reader = TranscriptReader(tmp_path)
    records = [transcript_record(sid, "haiku", line) for line in reader.read_new(sid)]
    assert len(records) == len(keys) < len(assistant)
    assert {r["id"] for r in records} == keys
    assert all(r["usage"]["output_tokens"] == max_out[r["id"]] for r in records)
    assert reader.read_new(sid) == []  # nothing is sent twice


def test_partial_last_line_waits_and_repeated_request_is_not_resent(tmp_path):
    sid = "s1"

    def line(req, out):
        return (
            json.dumps(
                {
                    "type": "assistant",
                    "requestId": req,
                    "timestamp": "t",
                    "message": {
                        "id": f"m-{req}",
                        "model": "claude-haiku-4-5",
                        "usage": {"input_tokens": 1, "output_tokens": out},
                    },
                }
            )
            + "\n"
        )

    path = _place(tmp_path, sid, line("r1", 1) + line("r1", 9) + line("r2", 3)[:20])
    reader = TranscriptReader(tmp_path)
    first = reader.read_new(sid)
    assert [(x["requestId"], x["message"]["usage"]["output_tokens"]) for x in first] == [("r1", 9)]
    with path.open("a") as fh:
        fh.write(line("r2", 3)[20:] + line("r1", 12))
    assert [x["requestId"] for x in reader.read_new(sid)] == ["r2"]


def test_signature_matches_contract():
    body = b'{"sandboxId":"s","records":[]}'
    expected = "sha256=" + __import__("hmac").new(b"k", b"1700000000.abc." + body, "sha256").hexdigest()
    assert sign("k", "1700000000", "abc", body) == expected


def test_lines_read_late_name_the_turn_they_were_written_in(tmp_path):
    import asyncio
    from datetime import UTC, datetime

    from vm_bridge.usage import UsageCollector

    sent: list[dict] = []
    relay = type("Relay", (), {"enqueue": staticmethod(sent.extend)})
    collector = UsageCollector(relay=relay, transcripts=TranscriptReader(tmp_path), transcript_wait=0.3)
    usage = {"inputTokens": 10, "outputTokens": 5, "cachedReadTokens": 100, "cachedWriteTokens": 50}

    def line(req: str, at: datetime, *, naive: bool = False) -> str:
        stamp = at.replace(tzinfo=None).isoformat() if naive else at.isoformat().replace("+00:00", "Z")
        message = {"id": f"m-{req}", "model": "claude-haiku-4-5", "usage": {"input_tokens": 1, "output_tokens": 2}}
        return json.dumps({"type": "assistant", "requestId": req, "timestamp": stamp, "message": message}) + "\n"

    async def run() -> None:
        collector.turn_started("s1", "haiku")
        during_turn_1 = datetime.now(UTC)
        # Turn 1 ends before the agent wrote its transcript: its ACP total stands in.
        await collector.turn_finished(session_id="s1", turn_no=1, model_id="haiku", usage=usage, rate_limits=[])
        await asyncio.sleep(0.01)
        collector.turn_started("s1", "opus")
        _place(tmp_path, "s1", line("r1", during_turn_1, naive=True) + line("r2", datetime.now(UTC)))
        await collector.turn_finished(session_id="s1", turn_no=2, model_id="opus", usage=usage, rate_limits=[])

    asyncio.run(asyncio.wait_for(run(), 10))
    assert [(r["id"], r["source"], r["turn"], r["modelId"]) for r in sent] == [
        ("s1:turn:1", "acp_turn", 1, "haiku"),
        ("r1", "transcript", 1, "haiku"),  # replaces the stand-in in the backend
        ("r2", "transcript", 2, "opus"),  # turn 2 has its lines: no stand-in
    ]


def test_a_line_stamped_in_its_turns_first_millisecond_is_that_turns(tmp_path):
    # Transcripts stamp lines to the millisecond: a line written in the millisecond its turn
    # started (a fast agent) must not fall back to the turn being read.
    import time
    from datetime import UTC, datetime

    from vm_bridge.usage import UsageCollector

    relay = type("Relay", (), {"enqueue": staticmethod(lambda records: None)})
    collector = UsageCollector(relay=relay, transcripts=TranscriptReader(tmp_path), transcript_wait=0.3)
    collector.turn_started("s1", "haiku")
    started = collector._turns["s1"][0][0]
    time.sleep(0.002)  # the next turn starts in a later millisecond
    collector.turn_started("s1", "opus")
    stamp = started.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert collector._turn_at("s1", {"timestamp": stamp}, (2, "opus")) == (1, "haiku")
    assert started <= datetime.now(UTC)
