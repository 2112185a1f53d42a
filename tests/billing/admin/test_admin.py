"""Admin: the switch ledger, per-user costs, usage lists at scale, CSV export, cap configuration."""

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.admin import EstimatedCountPaginator
from billing.models import CapPlan, Quote, SwitchReconciliation, SwitchRecord, UsageEvent
from tests.billing.caps.cap_fixtures import agent_session, event, oauth_user, reconcile, switch


@pytest.fixture
def ledger(db):
    """Two users; alice flaps haiku->opus->haiku inside the 1h TTL and has one reconciled switch."""
    alice, bob = oauth_user("alice"), oauth_user("bob", plan="pro")
    now = timezone.now()
    s1, s2, s3 = agent_session(alice), agent_session(alice), agent_session(bob)
    first = switch(alice, s1, at=now - timedelta(minutes=50), frm="haiku", to="opus", quoted="0.600000")
    switch(alice, s1, at=now - timedelta(minutes=30), frm="opus", to="haiku", quoted="0.100000")  # flap
    switch(alice, s2, at=now - timedelta(days=9), frm="haiku", to="sonnet", quoted="0.300000", outcome="failed")
    switch(bob, s3, at=now - timedelta(minutes=5), frm="haiku", to="sonnet", quoted="0.200000")
    key = str(s1.key)  # usage lands under the session's key
    follow = event(alice, session_key=key, at=now - timedelta(minutes=49), w1=60_000, miss="model_switch")
    follow.save()
    reconcile(first, follow, actual_tax="0.650000", actual_input="0.700000")
    UsageEvent.objects.bulk_create([
        event(alice, session_key=key, at=now - timedelta(minutes=40), r=80_000, w1=10_000, i=10_000),  # 80% hit
        event(alice, session_key=key, at=now - timedelta(minutes=60), w1=500_000, miss="first_turn"),  # excluded
    ])  # fmt: skip
    return {"alice": alice, "bob": bob, "s1": s1}


def test_ledger_is_view_only_with_filters(admin_client, ledger):
    url = reverse("admin:billing_switchrecord_changelist")
    response = admin_client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 4
    assert admin_client.get(reverse("admin:billing_switchrecord_add")).status_code == 403
    pk = SwitchRecord.objects.first().pk
    delete = reverse("admin:billing_switchrecord_delete", args=[pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403

    def count(**params):
        return admin_client.get(url, params).context["cl"].result_count

    assert count(user="alice") == 3
    assert count(user=str(ledger["bob"].pk)) == 1
    assert count(pair="haiku>opus") == 1
    assert count(outcome="failed") == 1
    assert count(**{"created_at__gte": (timezone.now() - timedelta(days=7)).isoformat()}) == 3
    assert count(q="sonnet") == 2
    assert count(user="alice", pair="haiku>sonnet") == 1


def test_csv_export_action_and_filtered_view(admin_client, ledger):
    url = reverse("admin:billing_switchrecord_changelist")
    ids = list(SwitchRecord.objects.filter(user=ledger["alice"]).values_list("pk", flat=True))
    response = admin_client.post(url, {"action": "export_csv", "_selected_action": ids})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 3 and {r["user"] for r in rows} == {"alice"}
    reconciled = next(r for r in rows if r["actual_tax_usd"])
    assert (reconciled["quoted_tax_usd"], reconciled["actual_tax_usd"]) == ("0.600000", "0.650000")

    response = admin_client.get(reverse("admin:billing_switchrecord_export"), {"pair": "haiku>sonnet"})
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(r["user"] for r in rows) == ["alice", "bob"]
    assert 'href="/admin/billing/switchrecord/export/?' in admin_client.get(url).content.decode()


def test_user_costs_page(admin_client, ledger):
    alice = ledger["alice"]
    response = admin_client.get(reverse("admin:billing_user_switch_costs", args=[alice.pk]))
    assert response.status_code == 200
    ctx = response.context
    assert ctx["totals"]["switches"] == 3 and ctx["totals"]["quoted_tax"] == Decimal("1.000000")
    assert ctx["accuracy"]["reconciled"] == 1 and ctx["accuracy"]["actual"] == Decimal("0.650000")
    assert ctx["health"]["flapping"]["count"] == 1
    assert ctx["worst_sessions"][0]["session_key"] == ledger["s1"].key
    assert ctx["worst_sessions"][0]["quoted"] == Decimal("0.700000")
    html = response.content.decode()
    page = html.split('id="content-main"')[1]
    assert "<svg" in page and "<rect" in page and "<script" not in page and "//cdn" not in html
    assert "Flapping" in html and "hit rate" in html
    # linked from the subscription admin
    subs = admin_client.get(reverse("admin:billing_subscription_changelist")).content.decode()
    assert reverse("admin:billing_user_switch_costs", args=[alice.pk]) in subs


def test_user_page_shows_the_same_cache_health_as_the_api(admin_client, ledger):
    from billing.usage.cache_health import user_cache_health

    alice = ledger["alice"]
    page = admin_client.get(reverse("admin:billing_user_switch_costs", args=[alice.pk]))
    api = user_cache_health(user=alice, days=28)
    shown = {k: v for k, v in page.context["health"].items() if k != "since"}
    assert shown == {k: v for k, v in api.items() if k != "since"}
    assert api["hitRate"] is not None and f"{round(api['hitRate'] * 100)}%" in page.content.decode()


def test_admins_only(ledger):
    staff_less = get_user_model().objects.create_user("mallory", password="pw")  # noqa: S106
    client = Client()
    client.force_login(staff_less)
    for url in (
        reverse("admin:billing_user_switch_costs", args=[ledger["alice"].pk]),
        reverse("admin:billing_switchrecord_export"),
        reverse("admin:billing_usageevent_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    staff_less.is_staff = True
    staff_less.save()
    assert client.get(reverse("admin:billing_user_switch_costs", args=[ledger["alice"].pk])).status_code == 403


@pytest.mark.parametrize("name", ["usageevent", "switchrecord", "switchreconciliation", "capreport", "ratelimitevent"])
def test_list_queries_do_not_grow_with_rows(admin_client, db, django_assert_max_num_queries, name):
    users = [oauth_user(f"user{i}") for i in range(8)]
    now = timezone.now()
    sessions = [agent_session(u) for u in users]
    events = [event(u, at=now - timedelta(minutes=k), session_key=f"k{k}", w1=1000) for u in users for k in range(25)]
    UsageEvent.objects.bulk_create(events)
    for u, s in zip(users, sessions, strict=True):
        for k in range(4):
            record = switch(u, s, at=now - timedelta(minutes=k * 10))
            follow = event(u, at=now - timedelta(minutes=k * 10 - 1), w1=5, session_key=f"f{k}")
            follow.save()
            reconcile(record, follow, actual_tax="0.1", actual_input="0.2")
    from billing.caps.reports import cap_reports_build

    for week in ("2026-W08", "2026-W09"):
        cap_reports_build(user_ids=[u.pk for u in users], week=week)
    url = reverse(f"admin:billing_{name}_changelist")
    with django_assert_max_num_queries(12):
        response = admin_client.get(url)
    assert response.status_code == 200
    with django_assert_max_num_queries(12):
        assert admin_client.get(url, {"user": "user3"}).status_code == 200


def test_paginator_counts_are_bounded(db, monkeypatch):
    user = oauth_user("pager")
    UsageEvent.objects.bulk_create([event(user, at=timezone.now(), w1=1) for _ in range(30)])
    monkeypatch.setattr(EstimatedCountPaginator, "COUNT_LIMIT", 10)
    filtered = EstimatedCountPaginator(UsageEvent.objects.filter(user=user).order_by("-pk"), 5)
    assert filtered.count == 11  # at most COUNT_LIMIT + 1 rows counted
    unfiltered = EstimatedCountPaginator(UsageEvent.objects.order_by("-pk"), 5)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE billing_usageevent")
        assert unfiltered.count == 30  # the planner's estimate, exact right after ANALYZE
    else:
        assert unfiltered.count == 11


def test_cap_configuration_is_editable_and_labelled(admin_client, db):
    plan = CapPlan.objects.get(plan="max5")
    url = reverse("admin:billing_capplan_change", args=[plan.pk])
    html = admin_client.get(url).content.decode()
    assert "an estimate" in html
    assert admin_client.get(reverse("admin:billing_capweight_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:billing_capsettings_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:billing_capalert_changelist")).status_code == 200
    pv_history = reverse("admin:billing_priceversion_history", args=[1])
    assert admin_client.get(pv_history).status_code in (200, 302)
    data = {
        "plan": "max5", "weekly_units": "300", "label": "estimate", "notes": "",
        "weights-TOTAL_FORMS": "0", "weights-INITIAL_FORMS": "0", "weights-MIN_NUM_FORMS": "0",
        "weights-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    plan.refresh_from_db()
    assert plan.weekly_units == Decimal(300)


def test_amounts_show_as_money_in_lists_and_on_the_user_page(admin_client, ledger):
    ledger_html = admin_client.get(reverse("admin:billing_switchrecord_changelist")).content.decode()
    assert "$0.6000" in ledger_html and "$0.6500" in ledger_html  # quoted, and actual once reconciled
    assert "0.600000" not in ledger_html and "0.650000" not in ledger_html
    usage_html = admin_client.get(reverse("admin:billing_usageevent_changelist")).content.decode()
    assert re.search(r">\$\d+\.\d{2,4}<", usage_html) and not re.search(r">\d+\.\d{6}<", usage_html)
    from billing.caps.reports import cap_reports_build

    cap_reports_build(user_ids=[ledger["alice"].pk])
    reports = admin_client.get(reverse("admin:billing_capreport_changelist")).content.decode()
    assert "$250.00" in reports and "250.0000" not in reports  # max5's cap, in API-equivalent dollars
    plans = admin_client.get(reverse("admin:billing_capplan_changelist")).content.decode()
    assert '<td class="field-weekly_cap">$250.00</td>' in plans
    prices = admin_client.get(reverse("admin:billing_priceversion_changelist")).content.decode()
    assert "$3.00" in prices and "$0.3000" in prices and "3.000000" not in prices  # Sonnet's input and read
    reconciled = admin_client.get(reverse("admin:billing_switchreconciliation_changelist")).content.decode()
    assert "$0.6500" in reconciled and "$0.7000" in reconciled and "0.650000" not in reconciled

    page = admin_client.get(reverse("admin:billing_user_switch_costs", args=[ledger["alice"].pk])).content.decode()
    page = page.split('id="content-main"')[1]
    assert "$1.00" in page  # total quoted
    assert "top $0.7000" in page  # the chart's legend
    assert "quoted $0.7000" in page and "actual $0.6500" in page  # a bar's tooltip
    assert not re.search(r"\d\.\d{5,}", page), re.findall(r"[\d.]*\d\.\d{5,}", page)


def test_menu_names_are_plural_english(admin_client, db):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "Model aliases" in html and "Cap plans (estimate)" in html and "Cap weights (estimate)" in html
    assert "aliass" not in html and "(estimate)s" not in html


def test_switch_list_leads_with_the_taxes_in_few_columns(admin_client, ledger):
    html = admin_client.get(reverse("admin:billing_switchrecord_changelist")).content.decode()
    table = html.split('id="result_list"')[1].split("</table>")[0]
    head, body = table.split("<tbody>")
    columns = [c.strip() for c in re.findall(r'<th scope="col"[^>]*>.*?<(?:a|span)[^>]*>([^<]*)<', head, re.S)]
    columns = [c for c in columns if c]
    assert columns[:3] == ["When (UTC)", "Quoted tax", "Actual tax"], columns
    assert len(columns) <= 5, columns
    rows = body.split("</tr>")[:-1]
    assert len(rows) == 4
    # Outcome, how it was allowed and the error fold into one column.
    assert any("failed, confirmed" in r for r in rows) and any("applied, confirmed" in r for r in rows)


def test_record_labels_write_money_as_money():
    """The labels the admin shows for a record (breadcrumbs, history, delete pages) use the one
    money rule: a negative amount is -$0.010000, never $-0.010000."""
    at = timezone.now().replace(year=2026, month=3, day=2, hour=9, minute=0, second=0)
    event = UsageEvent(model="claude-sonnet-4-6", occurred_at=at, cost_usd=Decimal("-0.01"))
    assert str(event) == "claude-sonnet-4-6 2026-03-02 09:00:00 -$0.010000"
    quote = Quote(id=7, from_model_id="haiku", to_model_id="opus", tax_usd=Decimal("-0.035"))
    assert str(quote) == "quote 7 haiku->opus -$0.035000"
    reconciliation = SwitchReconciliation(switch_id=3, actual_tax_usd=Decimal("0.5"), quote_error_usd=Decimal("-0.25"))
    assert str(reconciliation) == "switch 3: actual $0.500000 (error -$0.250000)"
