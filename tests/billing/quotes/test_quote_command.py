"""`manage.py quote` prints what quote_compute gives for the same session state."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db

AT = "2026-03-02T12:00:00+00:00"


def run(*args, at=AT):
    out = StringIO()
    call_command("quote", *args, "--at", at, stdout=out)
    return out.getvalue()


def test_json_matches_the_worked_example():
    data = json.loads(run("--from", "haiku", "--to", "opus", "--prefix-tokens", "100000", "--json"))
    assert data["nextTurn"] == {"stayUsd": "0.010000", "switchUsd": "0.625000"}
    assert data["taxUsd"] == "0.615000"
    assert data["breakdown"] == {"cacheRebuildUsd": "0.575000", "rateDeltaUsd": "0.040000"}
    assert data["priceVersion"] == {"from": "claude-haiku-4-5@2025-10-01", "to": "claude-opus-4-6@2026-02-05"}
    assert set(data) == {
        "prefixTokens", "cacheState", "nextTurn", "taxUsd", "breakdown", "steadyStateDeltaUsdPerTurn",
        "breakEvenTurns", "ttftPenaltyMs", "capPercent", "warnings", "priceVersion", "currency",
    }  # fmt: skip


def test_idle_past_the_ttl_and_api_ids():
    data = json.loads(
        run("--from", "claude-haiku-4-5-20251001", "--to", "claude-opus-4-6", "--prefix-tokens", "100000",
            "--idle", "300", "--json")
    )  # fmt: skip
    assert data["taxUsd"] == "0.500000" and data["warnings"] == ["already_cold"]
    data = json.loads(run("--from", "haiku", "--to", "opus", "--prefix-tokens", "100000", "--ttl", "1h", "--json"))
    assert data["nextTurn"]["switchUsd"] == "1.000000"


def test_table_output_and_errors():
    text = run("--from", "sonnet", "--to", "opus[1m]", "--prefix-tokens", "50000", "--new-tokens", "200")
    assert "switch tax" in text and "$" in text
    with pytest.raises(CommandError):
        run("--from", "gpt-4o", "--to", "opus", "--prefix-tokens", "1")


def test_haiku_to_sonnet_at_november_2026_prices():
    # `haiku` and `sonnet` mean Haiku 5.5 and Sonnet 5.5 by then: 100k warm tokens read on
    # Haiku 5.5 (100k is not above its 100k tier) against 100k written on Sonnet 5.5.
    data = json.loads(
        run("--from", "haiku", "--to", "sonnet", "--prefix-tokens", "100000", "--json", at="2026-11-02T12:00:00Z")
    )
    assert data["priceVersion"] == {"from": "claude-haiku-5-5@2026-10-07", "to": "claude-sonnet-5-5@2026-10-07"}
    assert data["nextTurn"] == {"stayUsd": "0.001000", "switchUsd": "0.250000"}
    assert data["taxUsd"] == "0.249000"
    # Both on the 2026 tokenizer: the prefix is the same count, no estimate.
    assert data["prefixTokens"] == {"from": 100000, "to": 100000, "toLow": 100000, "toHigh": 100000, "measured": None}
    assert "tokenizer_estimate" not in data["warnings"]
    # A time without a zone is UTC.
    args = ("--from", "haiku", "--to", "sonnet", "--prefix-tokens", "100000", "--json")
    assert json.loads(run(*args, at="2026-11-02T12:00:00")) == data


def test_switch_onto_a_2026_tokenizer_model_is_an_estimate_with_a_range():
    args = ("--from", "claude-sonnet-4-6", "--to", "opus", "--prefix-tokens", "100000", "--json")
    data = json.loads(run(*args, at="2026-08-01T00:00:00Z"))
    assert data["priceVersion"]["to"] == "claude-opus-5@2026-07-24"
    assert data["prefixTokens"] == {"from": 100000, "to": 117500, "toLow": 100000, "toHigh": 135000, "measured": None}
    assert "tokenizer_estimate" in data["warnings"]


def test_unknown_plan_is_rejected_with_the_known_plans():
    with pytest.raises(CommandError, match=r"--plan: invalid choice: 'gold' \(choose from 'free', 'pro'"):
        run("--from", "haiku", "--to", "opus", "--prefix-tokens", "1000", "--plan", "gold")


def test_flat_rate_plan_gets_its_cap_share():
    text = run("--from", "haiku", "--to", "opus", "--prefix-tokens", "100000", "--plan", "max5")
    # The tax's API-equivalent dollars over the plan's 250 weekly units: 0.615 / 250 = 0.246%.
    assert "weekly cap          0.2460% of the max5 plan's week (estimate)" in text
    data = json.loads(run("--from", "haiku", "--to", "opus", "--prefix-tokens", "100000", "--plan", "pro", "--json"))
    assert data["capPercent"] == "1.2300"  # 0.615 / 50
    assert "n/a (the free plan has no weekly cap)" in run(
        "--from", "haiku", "--to", "opus", "--prefix-tokens", "100000", "--plan", "free"
    )
    assert "weekly cap          n/a (no --plan)" in run("--from", "haiku", "--to", "opus", "--prefix-tokens", "1")


def test_negative_amounts_put_the_sign_before_the_dollar():
    # Opus idle past its TTL is cold: staying rewrites 100k at $6.25, switching writes them on Haiku.
    text = run("--from", "opus", "--to", "haiku", "--prefix-tokens", "100000", "--idle", "600")
    assert "switch tax          -$0.500000" in text
    assert "$-" not in text
