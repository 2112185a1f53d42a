"""Migration 0011 on a database whose catalog an earlier release loaded ends with the catalog
a fresh database gets, and the price versions ledger rows were made under stay."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing.models import ApiModel, ModelAlias, PriceVersion

BEFORE = [("billing", "0010_switch_outcome_unknown_and_reconciled")]
AFTER = [("billing", "0011_catalog_up_to_date")]

# Where the earlier catalog dated the first version of each 2026 model (first use in the
# transcripts, or a placeholder), and the release date that replaces it.
PLACEHOLDERS = {
    "claude-haiku-5-5": ("2026-08-15", "2026-10-07"),
    "claude-sonnet-5": ("2026-07-03", "2026-06-30"),
    "claude-sonnet-5-5": ("2026-08-15", "2026-09-28"),
    "claude-opus-4-8": ("2026-07-22", "2026-05-28"),
    "claude-opus-5": ("2026-07-29", "2026-07-24"),
    "claude-opus-5-5": ("2026-08-15", "2026-09-22"),
}


def _d(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def catalog_snapshot() -> dict:
    return {
        "models": sorted(
            ApiModel.objects.values_list(
                "api_id", "family", "canonical__api_id", "tokenizer_family", "tokenizer_ratio_low",
                "tokenizer_ratio_high", "context_window", "long_context_window", "notes",
            )
        ),
        "aliases": sorted(
            ModelAlias.objects.values_list("alias", "effective_from", "api_model__api_id", "long_context", "notes")
        ),
        "prices": {
            v["label"]: v
            for v in PriceVersion.objects.values(
                "label", "api_model__api_id", "effective_from", "input", "cache_write_5m", "cache_write_1h",
                "cache_read", "output", "min_cacheable_tokens", "long_context_threshold", "long_context_input",
                "long_context_cache_write_5m", "long_context_cache_write_1h", "long_context_cache_read",
                "long_context_output", "batch_multiplier", "geo_multiplier", "source_url", "notes",
            )
        },
    }  # fmt: skip


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    return executor.loader.project_state(target).apps


@pytest.fixture(autouse=True)
def _latest_schema_afterwards():
    # The tests stop at 0011; the tests after them need every later migration back.
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def _make_it_the_earlier_catalog(apps) -> None:
    """The catalog as the earlier release's 0003 loaded it, through the historical models."""
    api_model = apps.get_model("billing", "ApiModel")
    alias = apps.get_model("billing", "ModelAlias")
    price = apps.get_model("billing", "PriceVersion")
    for api_id, (placeholder, release) in PLACEHOLDERS.items():
        price.objects.filter(api_model__api_id=api_id, effective_from=_d(release)).update(
            effective_from=_d(placeholder), label=f"{api_id}@{placeholder}", notes="Effective date = first use."
        )
    price.objects.filter(effective_from=_d("2026-03-13")).delete()  # the premium ran on
    price.objects.update(source_url="https://platform.claude.com/docs/en/about-claude/pricing", notes="")
    alias.objects.exclude(effective_from=_d("2026-02-17")).delete()
    alias.objects.update(notes="")
    alias.objects.filter(alias="fable").delete()
    price.objects.filter(api_model__family="fable").delete()
    api_model.objects.filter(family="fable").delete()
    api_model.objects.update(context_window=200_000, notes="")
    api_model.objects.filter(api_id="claude-haiku-5-5").update(
        tokenizer_family="haiku-5.5", tokenizer_ratio_high=Decimal("1.30")
    )


@pytest.mark.django_db(transaction=True)
def test_migration_brings_an_earlier_catalog_up_to_the_fresh_one(django_user_model):
    fresh = catalog_snapshot()
    apps = _migrate(BEFORE)
    _make_it_the_earlier_catalog(apps)
    # A usage event billed under one of the placeholder versions.
    kept = PriceVersion.objects.get(label="claude-opus-4-8@2026-07-22")
    # Through the historical model: the table has the columns of this migration state.
    event = apps.get_model("billing", "UsageEvent").objects.create(
        session_key="s1", user_id=django_user_model.objects.create_user("ledger").pk, record_id="r1",
        source="transcript", model="claude-opus-4-8", occurred_at=_d("2026-07-23"), input_tokens=1000,
        cost_usd=Decimal("0.005000"), price_version_id=kept.pk,
    )  # fmt: skip
    earlier = catalog_snapshot()
    assert "claude-fable-5-1@2026-09-01" not in earlier["prices"]

    _migrate(AFTER)

    after = catalog_snapshot()
    assert after["models"] == fresh["models"]
    assert after["aliases"] == fresh["aliases"]
    # Every version of the fresh catalog; of the placeholders only the one a ledger row refers to,
    # unchanged, with the row still pointing at it.
    assert after["prices"].keys() == fresh["prices"].keys() | {kept.label}
    assert all(after["prices"][label] == fresh["prices"][label] for label in fresh["prices"])
    assert after["prices"][kept.label] == earlier["prices"][kept.label]
    event.refresh_from_db()
    assert (event.price_version_id, event.cost_usd) == (kept.pk, Decimal("0.005000"))


@pytest.mark.django_db(transaction=True)
def test_migration_changes_nothing_on_a_fresh_catalog():
    fresh = catalog_snapshot()
    _migrate(BEFORE)
    _migrate(AFTER)
    assert catalog_snapshot() == fresh
