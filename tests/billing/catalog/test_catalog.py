"""The catalog a fresh `migrate` loads, its selectors, history, and the LiteLLM import."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from billing.catalog.cost_engine import Usage, usage_cost
from billing.catalog.price_snapshots import prices_from_version
from billing.catalog.selectors import UnknownModel, model_priced, model_resolve, price_version_for
from billing.models import ApiModel, ModelAlias, PriceVersion

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
    "claude-opus-5-5": ("4", "5", "8", "0.20", "20", 512),  # read at 0.05x
    "claude-fable-5": ("10", "12.50", "20", "1.00", "50", 512),
    "claude-fable-5-1": ("10", "12.50", "20", "0.25", "50", 512),  # read at 0.025x
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


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("model_id", "api_id", "long_context"),
    [
        ("claude-sonnet-4-6", "claude-sonnet-4-6", False),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5", False),
        ("claude-sonnet-4-20250514", "claude-sonnet-4-0", False),
        ("claude-opus-4-1-20250805", "claude-opus-4-1", False),
        ("claude-opus-4-6-20990101", "claude-opus-4-6", False),  # an unlisted dated snapshot
        ("claude-fable-5-1", "claude-fable-5-1", False),
    ],
)
def test_model_resolve_api_ids(model_id, api_id, long_context):
    resolved = model_resolve(model_id=model_id, at=AT)
    assert (resolved.api_id, resolved.long_context, resolved.alias) == (api_id, long_context, None)


# What Claude Code's aliases meant on the Anthropic API, day by day (the fallback before a
# session's agent has said what its picker ids mean).
@pytest.mark.parametrize(
    ("alias", "day", "api_id"),
    [
        ("haiku", "2026-03-01", "claude-haiku-4-5"),
        ("haiku", "2026-10-06", "claude-haiku-4-5"),
        ("haiku", "2026-10-07", "claude-haiku-5-5"),
        ("sonnet", "2026-03-01", "claude-sonnet-4-6"),
        ("sonnet", "2026-06-30", "claude-sonnet-5"),
        ("sonnet", "2026-09-28", "claude-sonnet-5-5"),
        ("sonnet[1m]", "2026-07-15", "claude-sonnet-5"),
        ("default", "2026-03-01", "claude-sonnet-4-6"),
        ("default", "2026-11-01", "claude-sonnet-5-5"),
        ("opus", "2026-03-01", "claude-opus-4-6"),
        ("opus", "2026-04-19", "claude-opus-4-7"),
        ("opus", "2026-06-01", "claude-opus-4-8"),
        ("opus", "2026-08-01", "claude-opus-5"),  # the transcripts run claude-opus-5 from 2026-07-29
        ("opus", "2026-11-01", "claude-opus-5-5"),
        ("opus[1m]", "2026-11-01", "claude-opus-5-5"),
        ("fable", "2026-06-09", "claude-fable-5"),
        ("fable", "2026-08-31", "claude-fable-5"),
        ("fable", "2026-09-01", "claude-fable-5-1"),
    ],
)
def test_aliases_follow_claude_code_by_date(alias, day, api_id):
    resolved = model_resolve(model_id=alias, at=_at(day))
    assert (resolved.api_id, resolved.alias) == (api_id, alias)
    assert resolved.long_context == alias.endswith("[1m]")


def test_every_alias_row_cites_its_source():
    rows = ModelAlias.objects.all()
    assert {row.alias for row in rows} >= {"haiku", "sonnet", "sonnet[1m]", "opus", "opus[1m]", "fable", "default"}
    assert all(row.notes.startswith("Source: https://") for row in rows if row.effective_from > _at("2026-02-17"))


def test_model_priced_resolves_a_picker_id_per_day():
    # One process, two dates: what `haiku` means moved on 2026-10-07.
    assert model_priced(model_id="haiku", at=_at("2026-05-01")).resolved.api_id == "claude-haiku-4-5"
    assert model_priced(model_id="haiku", at=_at("2026-11-01")).resolved.api_id == "claude-haiku-5-5"


def test_model_resolve_unknown():
    with pytest.raises(UnknownModel):
        model_resolve(model_id="gpt-4o", at=AT)


def test_price_before_the_first_version_is_the_first_version():
    early = price_version_for(api_model="claude-opus-4-8", at=datetime(2026, 5, 1, tzinfo=UTC))
    assert early.label == "claude-opus-4-8@2026-05-28"


# Release dates from each model's page on platform.claude.com (the earlier catalog had the
# first day each model appeared in the transcripts, or a placeholder).
@pytest.mark.parametrize(
    ("api_id", "day", "page"),
    [
        ("claude-sonnet-5", "2026-06-30", "sonnet-5"),
        ("claude-sonnet-5-5", "2026-09-28", "sonnet-5-5"),
        ("claude-opus-4-8", "2026-05-28", "opus-4-8"),
        ("claude-opus-5", "2026-07-24", "opus-5"),
        ("claude-opus-5-5", "2026-09-22", "opus-5-5"),
        ("claude-haiku-5-5", "2026-10-07", "haiku-5-5"),
        ("claude-fable-5", "2026-06-09", "fable-5"),
        ("claude-fable-5-1", "2026-09-01", "fable-5-1"),
    ],
)
def test_first_versions_start_on_the_release_date_and_cite_it(api_id, day, page):
    first = PriceVersion.objects.filter(api_model__api_id=api_id).order_by("effective_from").first()
    assert first.effective_from == _at(day)
    assert first.source_url == f"https://platform.claude.com/docs/en/models/{page}/overview"


@pytest.mark.parametrize(
    ("api_id", "window", "tokenizer"),
    [
        ("claude-haiku-4-5", 200_000, "legacy"),
        ("claude-sonnet-4-5", 200_000, "legacy"),
        ("claude-sonnet-4-6", 1_000_000, "legacy"),
        ("claude-opus-4-6", 1_000_000, "legacy"),
        ("claude-opus-4-7", 1_000_000, "claude-2026"),
        ("claude-opus-4-8", 1_000_000, "claude-2026"),
        ("claude-opus-5", 1_000_000, "claude-2026"),
        ("claude-opus-5-5", 1_000_000, "claude-2026"),
        ("claude-sonnet-5", 1_000_000, "claude-2026"),
        ("claude-sonnet-5-5", 1_000_000, "claude-2026"),
        ("claude-haiku-5-5", 1_000_000, "claude-2026"),
        ("claude-fable-5", 1_000_000, "claude-2026"),
        ("claude-fable-5-1", 1_000_000, "claude-2026"),
    ],
)
def test_context_window_and_tokenizer(api_id, window, tokenizer):
    model = ApiModel.objects.get(api_id=api_id)
    assert (model.context_window, model.tokenizer_family) == (window, tokenizer)
    if tokenizer == "claude-2026":  # up to ~35% more tokens than the legacy tokenizer
        assert (model.tokenizer_ratio_low, model.tokenizer_ratio_high) == (Decimal(1), Decimal("1.35"))


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


LITELLM = {
    "sample_spec": {"input_cost_per_token": 0},
    "claude-haiku-4-5-20251001": {
        "litellm_provider": "anthropic", "mode": "chat",
        "input_cost_per_token": 1e-06, "output_cost_per_token": 5e-06,
        "cache_creation_input_token_cost": 1.25e-06, "cache_creation_input_token_cost_above_1hr": 2e-06,
        "cache_read_input_token_cost": 1e-07,
    },
    "claude-sonnet-4-5-20250929": {
        "litellm_provider": "anthropic", "mode": "chat",
        "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
        "cache_creation_input_token_cost": 3.75e-06, "cache_read_input_token_cost": 2.5e-07,
        "input_cost_per_token_above_200k_tokens": 6e-06, "output_cost_per_token_above_200k_tokens": 2.25e-05,
        "cache_creation_input_token_cost_above_200k_tokens": 7.5e-06,
        "cache_read_input_token_cost_above_200k_tokens": 5e-07,
    },
    "claude-sonnet-4-6": {
        "litellm_provider": "anthropic", "mode": "chat",
        "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
        "cache_creation_input_token_cost": 3.75e-06, "cache_read_input_token_cost": 3e-07,
    },
    "claude-3-haiku-20240307": {
        "litellm_provider": "anthropic", "mode": "chat",
        "input_cost_per_token": 2.5e-07, "output_cost_per_token": 1.25e-06,
        "cache_creation_input_token_cost": 3e-07, "cache_read_input_token_cost": 3e-08,
    },
    "anthropic.claude-sonnet-4-6": {"litellm_provider": "bedrock", "input_cost_per_token": 3e-06},
}  # fmt: skip

SONNET_45_DIFF = """claude-sonnet-4-5: new version claude-sonnet-4-5@2026-11-01 (after claude-sonnet-4-5@2025-09-29)
    cache_read               0.3 -> 0.25
    long_context_cache_read  0.6 -> 0.5
"""


def _litellm(tmp_path, *args):
    path = tmp_path / "model_prices_and_context_window.json"
    path.write_text(json.dumps(LITELLM))
    out = StringIO()
    call_command("import_litellm_prices", str(path), "--effective", "2026-11-01T00:00:00Z", *args, stdout=out)
    return out.getvalue()


def test_import_litellm_prices_dry_run_shows_the_difference_per_model_and_column(tmp_path):
    before = PriceVersion.objects.count()
    out = _litellm(tmp_path, "--dry-run")
    assert SONNET_45_DIFF in out
    # Sonnet 4.6 has been flat across its 1M window since 2026-03-13: a file without
    # above-200k prices matches the version in force.
    assert "unchanged claude-sonnet-4-6 (claude-sonnet-4-6@2026-03-13)" in out
    assert "unchanged claude-haiku-4-5 (claude-haiku-4-5@2025-10-01)" in out
    assert "skipped claude-3-haiku-20240307: not in the catalog" in out
    assert "1 to create, 2 unchanged, 1 skipped, 2 entries of other providers ignored" in out
    assert out.endswith("nothing written (--dry-run)\n")
    assert PriceVersion.objects.count() == before


def test_import_litellm_prices_shows_the_difference_then_applies_it(tmp_path):
    before = PriceVersion.objects.count()
    out = _litellm(tmp_path, "--no-input")
    assert out.index(SONNET_45_DIFF) < out.index("created 1 price version(s): claude-sonnet-4-5@2026-11-01")
    assert PriceVersion.objects.count() == before + 1
    new = price_version_for(api_model="claude-sonnet-4-5-20250929", at=datetime(2026, 11, 2, tzinfo=UTC))
    assert (new.label, new.cache_read, new.long_context_cache_read) == (
        "claude-sonnet-4-5@2026-11-01", Decimal("0.25"), Decimal("0.5"),
    )  # fmt: skip
    # What the file does not carry comes from the version in force, never dropped.
    assert (new.cache_write_1h, new.min_cacheable_tokens, new.long_context_threshold) == (Decimal(6), 1024, 200_000)
    assert new.source_url.startswith("https://github.com/BerriAI/litellm")
    old = price_version_for(api_model="claude-sonnet-4-5", at=datetime(2026, 10, 31, tzinfo=UTC))
    assert (old.label, old.cache_read) == ("claude-sonnet-4-5@2025-09-29", Decimal("0.30"))
    assert ApiModel.objects.filter(api_id="claude-3-haiku-20240307").count() == 0
    # Applying the same file again finds nothing to do.
    assert "0 to create, 3 unchanged" in _litellm(tmp_path, "--no-input")
    assert PriceVersion.objects.count() == before + 1
