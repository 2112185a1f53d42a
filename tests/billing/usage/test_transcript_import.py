"""The transcript import on small transcripts written here: dedupe, pricing, streams, switches,
storage."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from billing.catalog.cost_engine import Usage
from billing.catalog.price_snapshots import prices_from_version
from billing.catalog.selectors import price_version_for
from billing.models import UsageEvent
from billing.quotes.cache_tracker import CacheTracker
from billing.usage.ingestion import switch_tax_actual
from billing.usage.transcript_import import log_files, logs_import, parsing, usage_events_store
from tests.billing.usage.transcript_lines import SID, SONNET, T0, assistant, chat, import_command, s, user, write

pytestmark = pytest.mark.django_db


def test_lines_of_a_request_count_once_with_the_last_lines_usage(tmp_path):
    chat(tmp_path)
    report = logs_import([tmp_path])
    (session,) = report.sessions
    first = session.requests[0]
    assert [r.request.record_id for r in session.requests] == ["req_1", "req_2", "req_3", "req_4"]
    assert first.request.lines == 3 and first.usage.output_tokens == 640
    assert report.stats.synthetic_lines == 1
    # Haiku 4.5: $1 in, $2 1h write, $5 out per MTok: 3 + 40000 + 3200 micro-dollars.
    assert first.cost.total == Decimal("0.043203")
    assert first.cost.cache_write_1h == Decimal("0.04") and first.cost.cache_write_5m == 0
    assert first.miss_cause == "first_turn" and not first.eligible
    # The 1h writes are read back; the tracker knew exactly what would be read.
    assert [r.predicted_read for r in session.requests[1:3]] == [20_000, 20_900]
    assert all(r.eligible and r.miss_cause == "" for r in session.requests[1:3])
    # The switch's request is eligible too: Sonnet had nothing cached, and nothing was read.
    assert session.requests[3].eligible and session.requests[3].predicted_read == 0
    assert (report.totals.eligible, report.totals.within_tolerance) == (3, 3)


def test_switch_is_reconciled_with_the_shared_reconciliation(tmp_path):
    chat(tmp_path)
    report = logs_import([tmp_path])
    (switch,) = report.switches
    assert (switch.from_model, switch.to_model, switch.record_id) == ("claude-haiku-4-5", SONNET, "req_4")
    # The same computation as the live reconciliation, from the tracker state before req_4.
    tracker = CacheTracker()
    for r in report.sessions[0].requests[:3]:
        tracker.record(model=r.model, usage=r.usage, at=r.request.at)
    at = T0 + s(60)
    expected = switch_tax_actual(
        before=tracker.snapshot(),
        from_model="claude-haiku-4-5",
        to_model=SONNET,
        prices_from=prices_from_version(price_version_for(api_model="claude-haiku-4-5", at=at)),
        prices_to=prices_from_version(price_version_for(api_model=SONNET, at=at)),
        usage=Usage(input_tokens=3, cache_write_1h_tokens=22_100, output_tokens=100),
        at=at,
    )
    assert (switch.actual_input_usd, switch.stay_usd, switch.tax_usd) == (
        expected.actual_input_usd,
        expected.stay_usd,
        expected.tax_usd,
    )
    # Sonnet writes 22,100 tokens at $6/MTok; staying on Haiku would have read 21,600 and written the rest.
    assert switch.actual_input_usd == Decimal("0.132609")
    assert switch.tax_usd > Decimal("0.1")
    assert report.sessions[0].requests[3].miss_cause == "model_switch"


def test_each_request_is_priced_at_its_own_timestamp(tmp_path):
    # Sonnet 5.5's cache read went from $0.20 to $0.10 per MTok on 2026-10-07.
    before, after = datetime(2026, 10, 6, 12, tzinfo=UTC), datetime(2026, 10, 8, 12, tzinfo=UTC)
    write(
        tmp_path / "a.jsonl",
        [
            assistant("req_a", at=before, model="claude-sonnet-5-5", inp=0, read=1_000_000, out=0),
            assistant("req_b", at=after, model="claude-sonnet-5-5", inp=0, read=1_000_000, out=0),
        ],
    )
    first, second = logs_import([tmp_path]).sessions[0].requests
    assert first.version == price_version_for(api_model="claude-sonnet-5-5", at=before)
    assert second.version == price_version_for(api_model="claude-sonnet-5-5", at=after)
    assert (first.cost.total, second.cost.total) == (Decimal("0.2"), Decimal("0.1"))


def test_sidechains_have_their_own_trackers_per_conversation(tmp_path):
    write(
        tmp_path / "a.jsonl",
        [
            assistant("req_1", at=T0, w5=30_000, out=10, uuid="m1"),
            # Two sub-agents run in parallel, each from its own root.
            user(T0 + s(1), sidechain=True, uuid="a0", parentUuid=None),
            user(T0 + s(1), sidechain=True, uuid="b0", parentUuid=None),
            assistant("req_a1", at=T0 + s(2), sidechain=True, w5=8_000, out=5, uuid="a1", parentUuid="a0"),
            assistant("req_b1", at=T0 + s(2), sidechain=True, w5=12_000, out=5, uuid="b1", parentUuid="b0"),
            user(T0 + s(3), sidechain=True, uuid="a2", parentUuid="a1"),
            user(T0 + s(3), sidechain=True, uuid="b2", parentUuid="b1"),
            assistant("req_a2", at=T0 + s(4), sidechain=True, w5=500, read=8_000, uuid="a3", parentUuid="a2"),
            assistant("req_b2", at=T0 + s(4), sidechain=True, w5=600, read=12_000, uuid="b3", parentUuid="b2"),
            assistant("req_2", at=T0 + s(9), w5=700, read=30_000, out=10, uuid="m2", parentUuid="m1"),
        ],
    )
    report = logs_import([tmp_path])
    by_id = {r.request.record_id: r for r in report.sessions[0].requests}
    assert by_id["req_a1"].request.is_sidechain and by_id["req_a1"].request.thread == "a0"
    assert by_id["req_b2"].request.thread == "b0"
    assert by_id["req_a1"].miss_cause == by_id["req_b1"].miss_cause == "first_turn"
    # Interleaved, yet each read is predicted exactly, and the main chain is untouched.
    assert [by_id[k].predicted_read for k in ("req_a2", "req_b2", "req_2")] == [8_000, 12_000, 30_000]
    assert report.totals.sidechain_requests == 4
    assert report.switches == []


def test_requests_through_vertex_read_only_what_vertex_cached(tmp_path):
    # An agent failing over between Anthropic's API (req_...) and Vertex AI (req_vrtx_...):
    # each keeps its own cache, so each request reads what its own platform wrote.
    write(
        tmp_path / "a.jsonl",
        [
            assistant("req_011a", at=T0, model=SONNET, w5=40_000, out=10),
            assistant("req_vrtx_011b", at=T0 + s(10), model=SONNET, w5=41_000, out=10),
            assistant("req_011c", at=T0 + s(20), model=SONNET, w5=2_000, read=40_000, out=10),
            assistant("req_vrtx_011d", at=T0 + s(30), model=SONNET, w5=2_500, read=41_000, out=10),
        ],
    )
    report = logs_import([tmp_path])
    requests = report.sessions[0].requests
    assert [r.predicted_read for r in requests[1:]] == [0, 40_000, 41_000]
    assert [r.miss_cause for r in requests] == ["first_turn", "rotation", "", ""]
    assert (report.totals.eligible, report.totals.within_tolerance) == (3, 3)


def test_a_sidechain_copy_of_a_main_request_is_the_main_request(tmp_path):
    line = assistant("req_1", at=T0, w5=5_000, uuid="m1")
    write(tmp_path / "a.jsonl", [line, {**line, "isSidechain": True}])
    (only,) = logs_import([tmp_path]).sessions[0].requests
    assert not only.request.is_sidechain and only.request.lines == 2


def test_retry_under_a_stale_request_id_is_a_second_request(tmp_path):
    write(
        tmp_path / "a.jsonl",
        [
            assistant("req_1", at=T0, mid="msg_a", w5=5_000, read=40_000, out=1),
            # Same request id, another message: the same input (one response relabelled) ...
            assistant("req_1", at=T0 + s(1), mid="msg_b", w5=5_000, read=40_000, out=7),
            # ... and a different input: a second call that reads what the first wrote.
            assistant("req_1", at=T0 + s(90), mid="msg_c", read=45_000, out=300),
            assistant("req_1", at=T0 + s(91), mid="msg_c", read=45_000, out=900),
        ],
    )
    first, second = logs_import([tmp_path]).sessions[0].requests
    assert (first.request.record_id, first.usage.output_tokens) == ("req_1", 7)
    assert (second.request.record_id, second.usage.output_tokens) == ("req_1:msg_c", 900)
    assert second.predicted_read == 45_000


def test_message_id_stands_in_for_a_missing_request_id(tmp_path):
    write(
        tmp_path / "a.jsonl",
        [assistant(None, at=T0, mid="msg_01A", w5=5_000), assistant(None, at=T0 + s(1), mid="msg_01A", out=50)],
    )
    (only,) = logs_import([tmp_path]).sessions[0].requests
    assert only.request.record_id == "msg_01A" and only.usage.output_tokens == 50


def test_a_resumed_session_bills_the_copied_requests_once(tmp_path):
    original = [
        assistant("req_1", at=T0, w5=10_000, out=10),
        assistant("req_2", at=T0 + s(20), w5=500, read=10_000, out=10),
    ]
    other = "11111111-2222-4333-8444-555555555555"
    write(tmp_path / "one.jsonl", original)
    write(
        tmp_path / "two.jsonl",
        [{**line, "sessionId": other} for line in original]
        + [assistant("req_3", at=T0 + s(40), session=other, w5=300, read=10_500, out=10)],
    )
    report = logs_import([tmp_path])
    assert report.totals.requests == 3
    one, two = report.sessions
    assert [r.request.record_id for r in two.requests] == ["req_3"]
    # The copied history warmed the resumed session's tracker: its first own request is predicted.
    assert two.requests[0].eligible and two.requests[0].predicted_read == 10_500


@pytest.mark.parametrize("resumed_file", ["a.jsonl", "z.jsonl"])
def test_a_copy_with_more_output_wins_whatever_the_file_order(tmp_path, resumed_file):
    # The original session's file was cut mid-stream (8 output tokens); the resumed session's
    # copy of the same request has the final count (110).
    other = "11111111-2222-4333-8444-555555555555"
    original = tmp_path / ("z.jsonl" if resumed_file == "a.jsonl" else "a.jsonl")
    write(original, [assistant("req_1", at=T0, w5=10_000, out=8)])
    write(
        tmp_path / resumed_file,
        [
            assistant("req_1", at=T0, session=other, w5=10_000, out=110),
            assistant("req_2", at=T0 + s(30), session=other, read=10_000, w5=400, out=20),
        ],
    )
    for paths in ([original, tmp_path / resumed_file], [tmp_path / resumed_file, original]):
        report = logs_import(paths)
        one, two = report.sessions
        assert (one.session_id, [r.request.record_id for r in one.requests]) == (SID, ["req_1"])
        assert one.requests[0].usage.output_tokens == 110
        assert [r.request.record_id for r in two.requests] == ["req_2"]
        assert report.totals.tokens["output"] == 130


def test_folders_are_searched_recursively_and_missing_paths_fail(tmp_path):
    chat(tmp_path)
    (tmp_path / "notes.txt").write_text("not a transcript")
    assert [p.name for p in log_files([tmp_path])] == [f"{SID}.jsonl"]
    with pytest.raises(FileNotFoundError):
        log_files([tmp_path / "nope"])


def test_a_request_whose_id_is_too_long_to_store_is_left_out_and_counted(tmp_path):
    """Cut to fit its column, an id would no longer match itself on a re-import (nor stay unique)."""
    chat(tmp_path)
    stale = "req_" + "r" * 96  # a request id of exactly 100 characters: kept
    write(
        tmp_path / "projects" / "demo" / "long.jsonl",
        [
            assistant("req_" + "x" * 97, at=T0 + s(90)),  # request id: 101 characters
            assistant(None, mid="msg_" + "y" * 197, at=T0 + s(91)),  # record id (its message id): 201
            assistant("req_5", at=T0 + s(92), session="s" * 101),  # session id: 101
            assistant(stale, at=T0 + s(93), mid="msg_a", w5=5_000),
            # A second call under the stale id: its record id `<request id>:<message id>` is 205 long.
            assistant(stale, at=T0 + s(95), mid="msg_" + "m" * 100, read=5_000, out=9),
        ],
    )
    report = logs_import([tmp_path])
    assert report.stats.long_id_lines == 4
    assert [r.request.record_id for r in report.sessions[0].requests] == ["req_1", "req_2", "req_3", "req_4", stale]
    assert report.to_json()["requests"]["longIdLinesSkipped"] == 4
    owner = get_user_model().objects.create(username="importer")
    assert usage_events_store(report=report, user=owner) == (5, 0)
    assert usage_events_store(report=logs_import([tmp_path]), user=owner) == (0, 5)
    assert UsageEvent.objects.get(record_id=stale).request_id == stale
    assert "4 with an id too long to store" in import_command(tmp_path)


def test_the_id_limits_are_the_usage_tables_columns():
    field = UsageEvent._meta.get_field
    assert (
        field("session_key").max_length,
        field("record_id").max_length,
        field("request_id").max_length,
    ) == (parsing.MAX_SESSION_ID, parsing.MAX_RECORD_ID, parsing.MAX_REQUEST_ID)


def test_storing_by_copy_and_by_bulk_create_write_the_same_rows(tmp_path):
    chat(tmp_path)
    model = get_user_model()
    report = logs_import([tmp_path])
    rows = {}
    for name, copy in (("copier", True), ("inserter", False)):
        if copy and connection.vendor != "postgresql":
            continue
        user = model.objects.create(username=name)
        assert usage_events_store(report=report, user=user, copy=copy) == (4, 0)
        rows[name] = list(UsageEvent.objects.filter(user=user).order_by("occurred_at").values(*_COMPARED))
    assert len({json.dumps(r, default=str) for r in rows.values()}) == 1


_COMPARED = [f.attname for f in UsageEvent._meta.concrete_fields if f.attname not in ("id", "user_id", "created_at")]


@pytest.mark.parametrize("bad", [{"input_tokens": "5"}, {"output_tokens": -1}, {"cache_read_input_tokens": 1.5}])
def test_a_line_with_token_counts_that_cannot_be_priced_is_skipped(tmp_path, bad):
    """A hand-edited or truncated transcript must not stop the import of the rest."""
    line = assistant("req_bad", at=T0 + s(90))
    line["message"]["usage"].update(bad)
    chat(tmp_path)
    write(tmp_path / "projects" / "demo" / "broken.jsonl", [line])
    report = logs_import([tmp_path])
    assert [r.request.record_id for r in report.sessions[0].requests] == ["req_1", "req_2", "req_3", "req_4"]
    assert report.stats.unpriceable_requests == 1
    assert report.to_json()["requests"]["unpriceableRequests"] == 1
