"""The cap model as configuration: seeded defaults, lookup order, calibration, the quote's use of it."""

from decimal import Decimal

import pytest

from billing.caps.cap_model import cap_percent, cap_units
from billing.caps.plan_caps import cap_model_for_plan, cap_weights_resolve, plan_cap_for
from billing.catalog.price_snapshots import prices_from_version
from billing.models import CapPlan, CapSettings, CapWeight
from tests.billing.caps.cap_fixtures import WEEK_START, oauth_user, version

M = Decimal(1_000_000)


def _prices(api_model):
    return prices_from_version(version(api_model))


def test_seeded_defaults_are_the_api_dollar_estimate(db):
    assert {p.plan: p.weekly_units for p in CapPlan.objects.all()} == {"pro": 50, "max5": 250, "max20": 1000}
    assert set(CapPlan.objects.values_list("label", flat=True)) == {"estimate"}
    opus = CapWeight.objects.get(plan=None, model_key="claude-opus-4-6")
    pv = version("claude-opus-4-6")
    assert (opus.input, opus.cache_write_5m, opus.cache_write_1h, opus.cache_read, opus.output) == (
        pv.input, pv.cache_write_5m, pv.cache_write_1h, pv.cache_read, pv.output,
    )  # fmt: skip
    # every canonical model in the catalog has its row
    assert CapWeight.objects.filter(plan=None).count() >= 5


@pytest.mark.parametrize("ttl, write", [("1h", "10"), ("5m", "6.25")])
def test_cap_model_matches_api_prices(db, ttl, write):
    haiku, opus = _prices("claude-haiku-4-5"), _prices("claude-opus-4-6")
    cap = cap_model_for_plan(plan="max5", prices=[haiku, opus], ttl=ttl)
    assert cap.units_per_week == 250 and cap.label == "estimate"
    w = cap.weights_for(api_model="claude-opus-4-6")
    assert (w.input, w.cache_write, w.cache_read, w.output) == (
        Decimal(5) / M, Decimal(write) / M, Decimal("0.5") / M, Decimal(25) / M,
    )  # fmt: skip
    # the quote test's figure: a $0.99 tax is 0.3960% of 250 API-dollars
    units = cap_units(cap=cap, api_model="claude-opus-4-6", write_tokens=100_000) - cap_units(
        cap=cap, api_model="claude-opus-4-6", read_tokens=20_000
    )
    if ttl == "1h":
        assert units == Decimal("0.99") and cap_percent(units=units, cap=cap) == Decimal("0.3960")


def test_plans_without_a_cap(db):
    opus = _prices("claude-opus-4-6")
    assert cap_model_for_plan(plan="free", prices=[opus], ttl="5m") is None
    CapPlan.objects.filter(plan="pro").delete()
    assert cap_model_for_plan(plan="pro", prices=[opus], ttl="5m") is None


def test_weight_lookup_order(db):
    max5 = CapPlan.objects.get(plan="max5")
    kw = {"input": 1, "cache_write_5m": 1, "cache_write_1h": 1, "cache_read": 1}
    CapWeight.objects.create(plan=None, model_key="*", output=1, **kw)
    CapWeight.objects.create(plan=None, model_key="sonnet", output=2, **kw)
    CapWeight.objects.create(plan=max5, model_key="opus", output=3, **kw)
    CapWeight.objects.create(plan=max5, model_key="claude-opus-4-6", output=4, **kw)
    models = {"claude-opus-4-6": "opus", "claude-opus-4-5": "opus", "claude-sonnet-4-6": "sonnet", "x-new": "x"}
    CapWeight.objects.filter(plan=None, model_key__in=["claude-sonnet-4-6", "claude-opus-4-5"]).delete()

    def out(plan):
        return {k: (w.output * M if w else None) for k, w in cap_weights_resolve(plan=plan, models=models).items()}

    assert out("max5") == {"claude-opus-4-6": 4, "claude-opus-4-5": 3, "claude-sonnet-4-6": 2, "x-new": 1}
    assert out("pro")["claude-opus-4-6"] == version("claude-opus-4-6").output  # the default row
    assert out("pro")["claude-opus-4-5"] == 1  # no opus row for pro: "*"


def test_model_without_rows_weighs_its_api_prices(db):
    CapWeight.objects.all().delete()
    opus = _prices("claude-opus-4-6")
    cap = cap_model_for_plan(plan="pro", prices=[opus], ttl="1h")
    assert cap.weights_for(api_model="claude-opus-4-6").cache_write == opus.base.write_1h


def test_edits_change_the_quote_share(db):
    CapPlan.objects.filter(plan="max5").update(weekly_units=99)
    cap = cap_model_for_plan(plan="max5", prices=[_prices("claude-opus-4-6")], ttl="1h")
    assert cap_percent(units=Decimal("0.99"), cap=cap) == Decimal("1.0000")


def test_calibrated_units_apply_to_that_user_on_that_plan(db):
    user = oauth_user("cal")
    opus = _prices("claude-opus-4-6")
    CapSettings.objects.create(
        user=user, calibrated_units=Decimal(500), calibrated_plan="max5", calibrated_at=WEEK_START,
        calibration_events=3,
    )  # fmt: skip
    assert cap_model_for_plan(plan="max5", prices=[opus], ttl="1h", user=user).units_per_week == 500
    assert cap_model_for_plan(plan="max5", prices=[opus], ttl="1h").units_per_week == 250
    # made on another plan: not used
    assert cap_model_for_plan(plan="max20", prices=[opus], ttl="1h", user=user).units_per_week == 1000
    cap = plan_cap_for(plan="max5", user=user)
    assert cap.source == "calibrated" and cap.calibration_json()["events"] == 3
    assert cap.configured_units == 250
