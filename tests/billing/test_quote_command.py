"""`manage.py quote` prints what quote_compute gives for the same session state."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db

AT = "2026-03-02T12:00:00+00:00"


def run(*args):
    out = StringIO()
    call_command("quote", *args, "--at", AT, stdout=out)
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
    data = json.loads(
        run("--from", "haiku", "--to", "opus", "--prefix-tokens", "100000", "--ttl", "1h", "--json")
    )
    assert data["nextTurn"]["switchUsd"] == "1.000000"


def test_table_output_and_errors():
    text = run("--from", "sonnet", "--to", "opus[1m]", "--prefix-tokens", "50000", "--new-tokens", "200")
    assert "switch tax" in text and "$" in text
    with pytest.raises(CommandError):
        run("--from", "gpt-4o", "--to", "opus", "--prefix-tokens", "1")
