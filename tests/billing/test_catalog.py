"""The catalog a fresh `migrate` loads, its selectors, history, and the LiteLLM import."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from billing.costs import Usage, usage_cost
from billing.models import ApiModel, PriceVersion
from billing.prices import prices_from_version
from billing.pricing import UnknownModel, model_priced, model_resolve, price_version_for

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 1, tzinfo=UTC)

# DESIGN.md §6 (+ Sonnet 4 and Opus 4.1 from the transcripts): in, 5m w, 1h w, read, out, min cacheable
TABLE = {
    "claude-haiku-4-5": ("1", "1.25", "2", "0.10", "5", 4096),
    "claude-haiku-5-5": ("0.10", "0.125", "0.20", "0.01", "0.50", None),
    "claude-sonnet-4-5": ("3", "3.75", "6", "0.30", "15", 1024),
    "claude-sonnet-4-6": ("3", "3.75", "6", "0.30", "15", 1024),
    "claude-sonnet-5": ("2", "2.50", "4", "0.20", "10", 1024),
    "claude-sonnet-5-5": ("2", "2.50", "4", "0.10", "10", 512),  # read 0.10 from 2026-10-07
    "claude-opus-4-5": ("5", "6.25", "10", "0.50", "25", 4096),
    "claude-opus-4-6": ("5", "6.25", "10", "0.50", "25", 4096),
    "claude-opus-4-7": ("5", "6.25", "10", "0.50", "25", 2048),
    "claude-opus-4-8": ("5", "6.25", "10", "0.50", "25", 1024),
    "claude-opus-5": ("5", "6.25", "10", "0.50", "25", 512),
    "claude-opus-5-5": ("4", "5", "8", "0.20", "20", 512),
    "claude-sonnet-4-20250514": ("3", "3.75", "6", "0.30", "15", 1024),
    "claude-opus-4-1-20250805": ("15", "18.75", "30", "1.50", "75", 1024),
    "claude-sonnet-4-5-20250929": ("3", "3.75", "6", "0.30", "15", 1024),
    "claude-opus-4-5-20251101": ("5", "6.25", "10", "0.50", "25", 4096),
    "claude-haiku-4-5-20251001": ("1", "1.25", "2", "0.10", "5", 4096),
}


@pytest.mark.parametrize(("model_id", "row"), TABLE.items())
def test_every_table_row_is_loaded(model_id, row):
    version = price_version_for(api_model=model_id, at=AT)
    got = (
        version.input, version.cache_write_5m, version.cache_write_1h, version.cache_read, version.output,
        version.min_cacheable_tokens,
    )  # fmt: skip
    assert got == (*(Decimal(v) for v in row[:5]), row[5])
    assert version.source_url.startswith("https://")


def test_sonnet_55_read_price_change_is_a_second_version():
    before = price_version_for(api_model="claude-sonnet-5-5", at=datetime(2026, 10, 6, 23, 59, tzinfo=UTC))
    after = price_version_for(api_model="claude-sonnet-5-5", at=datetime(2026, 10, 7, tzinfo=UTC))
    assert (before.cache_read, after.cache_read) == (Decimal("0.20"), Decimal("0.10"))
    assert after.label == "claude-sonnet-5-5@2026-10-07"


def test_haiku_55_tier_and_geo_from_the_catalog():
    prices = model_priced(model_id="claude-haiku-5-5", at=AT).prices
    cost = usage_cost(usage=Usage(cache_read_tokens=150_000), prices=prices)
    assert cost.total == Decimal("0.0075") and cost.long_context
    assert model_priced(model_id="claude-opus-4-6", at=AT).prices.geo_multiplier == Decimal("1.1")
    assert model_priced(model_id="claude-opus-4-5", at=AT).prices.geo_multiplier == Decimal(1)


@pytest.mark.parametrize(
    ("model_id", "api_id", "long_context"),
    [
        ("haiku", "claude-haiku-4-5", False),
        ("sonnet", "claude-sonnet-4-6", False),
        ("sonnet[1m]", "claude-sonnet-4-6", True),
        ("opus", "claude-opus-4-6", False),
        ("opus[1m]", "claude-opus-4-6", True),
        ("default", "claude-sonnet-4-6", False),
        ("claude-sonnet-4-6", "claude-sonnet-4-6", False),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5", False),
        ("claude-sonnet-4-20250514", "claude-sonnet-4-0", False),
        ("claude-opus-4-1-20250805", "claude-opus-4-1", False),
        ("claude-opus-4-6-20990101", "claude-opus-4-6", False),  # an unlisted dated snapshot
    ],
)
def test_model_resolve(model_id, api_id, long_context):
    resolved = model_resolve(model_id=model_id, at=AT)
    assert (resolved.api_id, resolved.long_context) == (api_id, long_context)


def test_model_resolve_unknown():
    with pytest.raises(UnknownModel):
        model_resolve(model_id="gpt-4o", at=AT)


def test_price_before_the_first_version_is_the_first_version():
    early = price_version_for(api_model="claude-opus-4-8", at=datetime(2026, 7, 1, tzinfo=UTC))
    assert early.label == "claude-opus-4-8@2026-07-22"


def test_prices_snapshot_carries_tokenizer_and_rates():
    prices = prices_from_version(price_version_for(api_model="claude-opus-4-7", at=AT))
    assert (prices.tokenizer_family, prices.tokenizer_ratio_high, prices.family) == (
        "claude-2026",
        Decimal("1.35"),
        "opus",
    )
    assert prices.base.write_5m == Decimal("0.00000625")


def test_edits_are_kept_in_history():
    version = PriceVersion.objects.get(label="claude-haiku-4-5@2025-10-01")
    version.notes = "checked"
    version.save()
    assert version.history.count() == 1  # rows loaded by the migration have no history until edited
    assert version.history.first().history_type == "~"


def test_import_litellm_prices(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "sample_spec": {"input_cost_per_token": 0},
                "claude-haiku-4-5-20251001": {
                    "litellm_provider": "anthropic", "mode": "chat",
                    "input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06,
                    "cache_creation_input_token_cost": 1.25e-06,
                    "cache_creation_input_token_cost_above_1hr": 2e-06,
                    "cache_read_input_token_cost": 1e-07,
                },
                "claude-sonnet-4-6": {
                    "litellm_provider": "anthropic", "mode": "chat",
                    "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                    "cache_creation_input_token_cost": 3.75e-06, "cache_read_input_token_cost": 2.5e-07,
                },
                "claude-3-haiku-20240307": {
                    "litellm_provider": "anthropic", "mode": "chat",
                    "input_cost_per_token": 2.5e-07, "output_cost_per_token": 1.25e-06,
                    "cache_creation_input_token_cost": 3e-07, "cache_read_input_token_cost": 3e-08,
                },
                "anthropic.claude-sonnet-4-6": {"litellm_provider": "bedrock", "input_cost_per_token": 3e-06},
            }
        )
    )  # fmt: skip
    before = PriceVersion.objects.count()
    out = StringIO()
    call_command(
        "import_litellm_prices", str(path), "--dry-run", "--effective", "2026-11-01T00:00:00Z", stdout=out
    )
    assert "would create claude-sonnet-4-6@2026-11-01: cache_read 0.300000 -> 0.25" in out.getvalue()
    assert "skipped claude-3-haiku-20240307: not in the catalog" in out.getvalue()
    assert PriceVersion.objects.count() == before

    call_command("import_litellm_prices", str(path), "--effective", "2026-11-01T00:00:00Z", stdout=StringIO())
    assert PriceVersion.objects.count() == before + 1
    new = price_version_for(api_model="claude-sonnet-4-6", at=datetime(2026, 11, 2, tzinfo=UTC))
    assert (new.cache_read, new.cache_write_1h, new.min_cacheable_tokens) == (
        Decimal("0.25"),
        Decimal(6),
        1024,
    )
    # The long-context tier the file did not mention is carried over, not dropped.
    assert new.long_context_threshold == 200_000 and new.long_context_output == Decimal("22.5")
    old = price_version_for(api_model="claude-sonnet-4-6", at=datetime(2026, 10, 31, tzinfo=UTC))
    assert old.cache_read == Decimal("0.30")
    assert ApiModel.objects.filter(api_id="claude-3-haiku-20240307").count() == 0
