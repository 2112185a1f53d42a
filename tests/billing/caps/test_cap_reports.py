"""Weekly cap reports: figures, windows, calibration, idempotency, alerts, command and API."""

import io
import json
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from billing.caps import delivery
from billing.caps.burn import runs_out_at
from billing.caps.calibration import utilization_fraction
from billing.caps.delivery import cap_report_deliver
from billing.caps.reports import cap_reports_build, cap_reports_dispatch
from billing.caps.weeks import InvalidWeek, iso_week_start, report_window
from billing.models import CapAlert, CapReport, CapSettings, RateLimitEvent, UsageEvent
from billing.subscriptions.services import subscription_set
from billing.tasks import cap_report_deliver_task
from tests.billing.caps.cap_fixtures import (
    WEEK,
    WEEK_START,
    agent_session,
    event,
    oauth_user,
    reconcile,
    switch,
    version,
)
from tests.conftest import client_for

H = timedelta(hours=1)
D = timedelta(days=1)


def _scenario(user):
    """4.65 units on opus in W10: 2.8 due to switches, 0.95 to other misses (see the sums below)."""
    session = agent_session(user)
    UsageEvent.objects.bulk_create([
        # first turn: 100k 1h-write (1.0) + 10k output (0.25); miss beyond a read: 100k x 9.5/M = 0.95
        event(user, at=WEEK_START + H, w1=100_000, o=10_000, miss="first_turn"),
        # a hit: 100k read (0.05) + 10k write (0.1) + 10k out (0.25)
        event(user, at=WEEK_START + 2 * H, r=100_000, w1=10_000, o=10_000),
        # an unreconciled switch: its write counts (2.0)
        event(user, at=WEEK_START + 3 * H, w1=200_000, miss="model_switch"),
        # last week: not in this report
        event(user, at=WEEK_START - H, w1=5_000_000, miss="first_turn"),
    ])  # fmt: skip
    # a reconciled switch in another session: 1.0 burned, of which its real tax $0.80 = 0.8 units
    reconciled = event(user, session_key="s2", at=WEEK_START + 4 * H, w1=100_000, miss="model_switch")
    reconciled.save()
    record = switch(user, session, at=WEEK_START + 4 * H - timedelta(minutes=1))
    reconcile(record, reconciled, actual_tax="0.800000", actual_input="1.000000")


def test_week_parsing_and_windows():
    assert iso_week_start("2026-W10") == WEEK_START
    assert iso_week_start("2026-W01") == datetime(2025, 12, 29, tzinfo=UTC)
    for bad in ("2026-10", "2026-W54", "W10", ""):
        with pytest.raises(InvalidWeek):
            iso_week_start(bad)
    now = WEEK_START + 2 * D + 5 * H  # Wednesday 05:00
    assert report_window(row=None, now=now).start == WEEK_START
    assert report_window(row=None, now=now, previous=True).week == "2026-W09"
    wednesday_noon = CapSettings(reset_weekday=2, reset_time=time(12, 0))
    window = report_window(row=wednesday_noon, now=now)  # before this week's reset: last week's window
    assert (window.week, window.start) == ("2026-W09", WEEK_START - 5 * D + 12 * H)
    window = report_window(row=wednesday_noon, now=now, week=WEEK)
    assert (window.week, window.start, window.end) == (WEEK, WEEK_START + 2 * D + 12 * H, WEEK_START + 9 * D + 12 * H)
    rolling = CapSettings(reset_mode="rolling", reset_weekday=4)
    assert report_window(row=rolling, now=now).start == WEEK_START  # reports of rolling users: ISO weeks


def test_utilization_and_run_out():
    assert utilization_fraction(Decimal("0.4")) == Decimal("0.4")
    assert utilization_fraction(Decimal("40")) == Decimal("0.4")
    end = WEEK_START + 7 * D
    # 150 of 250 units in the first day: out after 1 2/3 days
    out = runs_out_at(units=Decimal(150), cap_units=Decimal(250), start=WEEK_START, end=end, now=WEEK_START + D)
    assert abs(out - (WEEK_START + D * 250 / 150)) < timedelta(seconds=1)
    assert runs_out_at(units=Decimal(10), cap_units=Decimal(250), start=WEEK_START, end=end, now=WEEK_START + D) is None
    assert runs_out_at(units=Decimal(0), cap_units=Decimal(250), start=WEEK_START, end=end, now=end) is None


def test_report_figures(db):
    user = oauth_user("alice")
    _scenario(user)
    subscription_set(username="metered", plan="max5", billing_mode="metered")
    now = WEEK_START + D

    [report] = cap_reports_build(user_ids=[user.pk], now=now, week=WEEK)

    assert report.week == WEEK and report.plan == "max5"
    assert (report.cap_units, report.cap_source) == (Decimal(250), "configured")
    assert report.units == Decimal("4.650000")
    assert report.percent == Decimal("1.8600")
    assert report.switch_units == Decimal("2.800000")
    assert report.miss_units == Decimal("0.950000")
    assert report.requests == 4
    assert report.runs_out_at is None  # 4.65 a day lasts far beyond the week
    assert [s["sessionKey"] for s in report.worst_sessions] == ["s1", "s2"]
    assert report.worst_sessions[0] == {
        "sessionKey": "s1", "units": "3.650000", "switchUnits": "2.000000", "missUnits": "0.950000", "requests": 3,
    }  # fmt: skip


def test_a_model_the_catalog_does_not_list_counts_nothing(db):
    """The weights are joined to the events by (plan, model), for the catalog's undated models:
    an event stored under any other model id counts neither units nor a request."""
    user = oauth_user("kim")
    UsageEvent.objects.bulk_create([
        event(user, at=WEEK_START + H, w1=1_000_000),  # 10 units on opus
        event(user, at=WEEK_START + 2 * H, w1=1_000_000, model="claude-retired-1", pv=version()),
    ])  # fmt: skip
    [report] = cap_reports_build(user_ids=[user.pk], week=WEEK, now=WEEK_START + D)
    assert (report.units, report.requests) == (Decimal("10.000000"), 1)


def test_metered_and_unknown_users_get_no_report(db):
    sub, _ = subscription_set(username="metered", plan="max5", billing_mode="metered")
    free, _ = subscription_set(username="free", plan="free", billing_mode="oauth")
    assert cap_reports_build(user_ids=[sub.user_id, free.user_id, 999_999], week=WEEK) == []


def test_batch_query_count_does_not_grow_with_users(db, django_assert_max_num_queries):
    users = [oauth_user(f"u{i}", plan=("pro", "max5", "max20")[i % 3]) for i in range(30)]
    UsageEvent.objects.bulk_create(
        [event(u, at=WEEK_START + H * (k + 1), w1=10_000, o=1_000, session_key=f"s{k % 3}")
         for u in users for k in range(6)]
    )  # fmt: skip
    cap_reports_build(user_ids=[u.pk for u in users], week=WEEK, now=WEEK_START + D)  # warm the catalog
    with django_assert_max_num_queries(17):
        reports = cap_reports_build(user_ids=[u.pk for u in users], week=WEEK, now=WEEK_START + D)
    assert len(reports) == 30
    assert {r.plan: r.cap_units for r in reports} == {"pro": 50, "max5": 250, "max20": 1000}


def test_rebuild_updates_until_sent_then_stays(db, mailoutbox):
    user = oauth_user("bob")
    UsageEvent.objects.bulk_create([event(user, at=WEEK_START + H, w1=1_000_000)])  # 10 units
    [first] = cap_reports_build(user_ids=[user.pk], week=WEEK, now=WEEK_START + D)
    UsageEvent.objects.bulk_create([event(user, at=WEEK_START + 2 * H, w1=1_000_000)])
    [again] = cap_reports_build(user_ids=[user.pk], week=WEEK, now=WEEK_START + 2 * D)
    assert again.pk == first.pk and again.units == Decimal("20.000000")
    assert CapReport.objects.count() == 1

    after_week = WEEK_START + 8 * D
    assert cap_report_deliver(report_id=first.pk, now=after_week).report_sent
    assert not cap_report_deliver(report_id=first.pk, now=after_week).report_sent  # a duplicate
    assert len(mailoutbox) == 1
    assert "2026-W10" in mailoutbox[0].subject and "estimate" in mailoutbox[0].body

    UsageEvent.objects.bulk_create([event(user, at=WEEK_START + 3 * H, w1=1_000_000)])
    [sent] = cap_reports_build(user_ids=[user.pk], week=WEEK, now=after_week)
    assert sent.units == Decimal("20.000000") and sent.sent_at is not None  # a sent report is final


def test_alerts_once_per_threshold_and_week(db, mailoutbox, monkeypatch, settings):
    posted = []
    monkeypatch.setattr(delivery.httpx, "post", lambda url, **kw: posted.append((url, kw)) or httpx.Response(204))
    settings.CAP_ALERT_WEBHOOK_URL = "https://hooks.example/cap"
    user = oauth_user("carol")  # max5: 250 units
    UsageEvent.objects.bulk_create([event(user, at=WEEK_START + H, w1=13_000_000)])  # 130 units = 52%
    now = WEEK_START + D
    [report] = cap_reports_build(user_ids=[user.pk], week=WEEK, now=now)

    assert cap_report_deliver(report_id=report.pk, now=now).alerts == [50]
    assert cap_report_deliver(report_id=report.pk, now=now).alerts == []
    UsageEvent.objects.bulk_create([event(user, at=WEEK_START + 2 * H, w1=12_000_000)])  # 250 units = 100%
    [report] = cap_reports_build(user_ids=[user.pk], week=WEEK, now=now)
    assert cap_report_deliver(report_id=report.pk, now=now).alerts == [80, 100]

    assert sorted(CapAlert.objects.values_list("threshold", flat=True)) == [50, 80, 100]
    assert [m.subject for m in mailoutbox] == [
        "50% of your weekly cap used (estimate)",
        "100% of your weekly cap used (estimate)",
    ]
    assert [p[0] for p in posted] == ["https://hooks.example/cap"] * 2
    assert posted[1][1]["json"]["threshold"] == 100 and posted[1][1]["timeout"] == settings.CAP_WEBHOOK_TIMEOUT
    alert = CapAlert.objects.get(threshold=100)
    assert alert.sent_at == now and alert.channels == ["email", "webhook"]


def test_webhook_failure_still_records_the_alert(db, mailoutbox, monkeypatch):
    def boom(url, **kw):
        raise httpx.ConnectError("refused")

    monkeypatch.setattr(delivery.httpx, "post", boom)
    user = oauth_user("dave", plan="pro")
    CapSettings.objects.create(user=user, webhook_url="https://hooks.example/dave")
    UsageEvent.objects.bulk_create([event(user, at=WEEK_START + H, w1=3_000_000)])  # 30 of 50
    [report] = cap_reports_build(user_ids=[user.pk], week=WEEK, now=WEEK_START + D)
    assert cap_report_deliver(report_id=report.pk, now=WEEK_START + D).alerts == [50]
    assert CapAlert.objects.get().channels == ["email"]


def test_calibration_from_weekly_rate_limit_events(db):
    user = oauth_user("erin")
    UsageEvent.objects.bulk_create([
        event(user, at=WEEK_START + H, w1=500_000),  # 5 units
        event(user, at=WEEK_START + 3 * H, w1=100_000),  # 6 units in all
    ])  # fmt: skip
    resets = WEEK_START + 7 * D
    RateLimitEvent.objects.bulk_create([
        # 5 units at half the cap (0..1), then 6 units at 60% (0..100): both say 10 units a week
        RateLimitEvent(session_key="s1", user=user, record_id="a", rate_limit_type="weekly", resets_at=resets,
                       utilization=Decimal("0.5"), occurred_at=WEEK_START + 2 * H),
        RateLimitEvent(session_key="s1", user=user, record_id="b", rate_limit_type="weekly", resets_at=resets,
                       utilization=Decimal("60"), occurred_at=WEEK_START + 4 * H),
        # too little to divide by, and a five-hour event: ignored
        RateLimitEvent(session_key="s1", user=user, record_id="c", rate_limit_type="weekly", resets_at=resets,
                       utilization=Decimal("0.01"), occurred_at=WEEK_START + 5 * H),
        RateLimitEvent(session_key="s1", user=user, record_id="d", rate_limit_type="five_hour",
                       utilization=Decimal("0.9"), occurred_at=WEEK_START + 5 * H),
    ])  # fmt: skip
    now = WEEK_START + D
    [report] = cap_reports_build(user_ids=[user.pk], week=WEEK, now=now)

    row = CapSettings.objects.get(user=user)
    assert (row.calibrated_units, row.calibrated_plan, row.calibration_events) == (Decimal(10), "max5", 2)
    assert row.calibrated_at == now
    assert (report.cap_units, report.cap_source, report.percent) == (Decimal(10), "calibrated", Decimal(60))


def test_cap_report_command(db, mailoutbox):
    user = oauth_user("frank")
    _scenario(user)
    out, err = io.StringIO(), io.StringIO()
    call_command("cap_report", "--week", WEEK, "--user", "frank", "--json", stdout=out, stderr=err)
    [line] = out.getvalue().splitlines()
    body = json.loads(line)
    assert body["user"] == "frank" and body["units"] == "4.650000" and body["label"] == "estimate"
    assert body["sentAt"] is not None  # the week is over: the report went out
    assert len(mailoutbox) == 1
    call_command("cap_report", "--week", WEEK, stdout=io.StringIO(), stderr=io.StringIO())
    assert len(mailoutbox) == 1 and CapReport.objects.count() == 1

    out = io.StringIO()
    call_command("cap_report", "--week", WEEK, "--no-send", stdout=out, stderr=io.StringIO())
    assert "== frank" in out.getvalue() and "estimate" in out.getvalue()


@pytest.mark.parametrize("args", [["--week", "2026-10"], ["--user", "nobody"]])
def test_cap_report_command_errors(db, args):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("cap_report", *args, stdout=io.StringIO(), stderr=io.StringIO())


def test_dispatch_enqueues_one_delivery_per_user_on_commit(db, django_capture_on_commit_callbacks, mailoutbox):
    users = [oauth_user(f"d{i}", plan="pro") for i in range(3)]
    UsageEvent.objects.bulk_create([event(u, at=WEEK_START + H, w1=3_000_000) for u in users])  # 60% of 50
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert cap_reports_dispatch(week=WEEK, now=WEEK_START + D, deliver=cap_report_deliver_task.delay) == 3
    assert len(callbacks) == 1  # one chunk
    # the eager tasks ran now (real time), after W10: each report went out once
    assert CapReport.objects.filter(sent_at__isnull=False).count() == 3
    assert len(mailoutbox) == 3


# --- API ---------------------------------------------------------------------


def test_cap_api_for_metered_users_is_404(pro_client):
    response = pro_client.get("/api/billing/cap")
    assert response.status_code == 404
    assert response.json()["code"] == "no_weekly_cap" and set(response.json()) == {"code", "message", "extra"}


def test_cap_api_needs_auth(db):
    assert APIClient().get("/api/billing/cap").status_code == 401


def test_cap_api_this_week(db):
    client = client_for("gina", "max5", billing="oauth")
    now = timezone.now()
    UsageEvent.objects.bulk_create([event(client.user, at=now - timedelta(minutes=5), w1=1_000_000)])
    body = client.get("/api/billing/cap").json()
    assert body["label"] == "estimate" and body["plan"] == "max5"
    assert body["capUnits"] == "250.0000" and body["capSource"] == "configured" and body["calibration"] is None
    assert body["units"] == "10.000000" and body["capPercent"] == "4.0000"
    assert Decimal(body["projection"]["unitsAtWeekEnd"]) >= Decimal(10)

    CapSettings.objects.create(
        user=client.user, reset_mode="rolling", calibrated_units=Decimal(100), calibrated_plan="max5",
        calibrated_at=now, calibration_events=2,
    )  # fmt: skip
    body = client.get("/api/billing/cap").json()
    assert body["resetMode"] == "rolling" and body["capSource"] == "calibrated"
    assert body["calibration"]["events"] == 2 and body["capPercent"] == "10.0000"
    assert body["projection"]["unitsAtWeekEnd"] == "10.000000" and body["projection"]["runsOutAt"] is None


def test_reports_api_newest_first_paginated(db):
    client = client_for("hank", "pro", billing="oauth")
    other = oauth_user("ivy")
    for week in ("2026-W08", "2026-W09", "2026-W10"):
        cap_reports_build(user_ids=[client.user.pk, other.pk], week=week, now=WEEK_START + 8 * D)
    body = client.get("/api/billing/reports?pageSize=2").json()
    assert body["count"] == 3 and body["next"]
    assert [r["week"] for r in body["results"]] == ["2026-W10", "2026-W09"]
    assert body["results"][0]["label"] == "estimate"
    body = client.get("/api/billing/reports?pageSize=2&page=2").json()
    assert [r["week"] for r in body["results"]] == ["2026-W08"]


def test_cap_crossing_finds_the_minute_the_burn_reached_the_cap():
    from billing.caps.cap_model import cap_crossing

    end = WEEK_START + 7 * D
    hourly = Decimal(2)  # 2 units an hour from the start: 100 units are reached after 50 hours

    def units_until(t):
        return hourly * Decimal((t - WEEK_START).total_seconds()) / 3600

    at = cap_crossing(start=WEEK_START, end=end, cap_units=Decimal(100), units_until=units_until)
    assert timedelta(0) <= at - (WEEK_START + 50 * H) <= timedelta(minutes=1)
    assert cap_crossing(start=WEEK_START, end=end, cap_units=Decimal(1000), units_until=units_until) is None


def test_a_finished_week_says_what_happened_in_the_settings_unit(db):
    spender, saver = oauth_user("spender"), oauth_user("saver")
    UsageEvent.objects.bulk_create([
        # opus 1h writes at $10/MTok: 100 then 200 API-equivalent dollars; max5's cap is 250
        event(spender, at=WEEK_START + H, w1=10_000_000),
        event(spender, at=WEEK_START + 2 * D + 5 * H, w1=20_000_000),
        event(spender, at=WEEK_START + 4 * D, w1=1_000_000),
    ])  # fmt: skip
    _scenario(saver)
    after = WEEK_START + 8 * D
    reports = {r.user_id: r for r in cap_reports_build(user_ids=[spender.pk, saver.pk], now=after, week=WEEK)}

    spent = reports[spender.pk]
    assert spent.units == Decimal(310) and spent.percent == Decimal(124)
    ran_out = WEEK_START + 2 * D + 5 * H  # the second write took it over the cap
    assert timedelta(0) < spent.runs_out_at - ran_out <= timedelta(minutes=1)
    text = delivery.cap_report_text(spent)
    assert "The week is over: 124.00% of the cap used; it ran out on Wed 2026-03-04 05:00 UTC." in text
    assert "$310.00 of an estimated $250.00 a week in API-equivalent dollars" in text
    assert "current rate" not in text and " units" not in text

    saved = delivery.cap_report_text(reports[saver.pk])
    assert "The week is over: 1.86% of the cap used; it did not run out." in saved
    assert "$4.65 of an estimated $250.00 a week in API-equivalent dollars" in saved
    assert "Due to model switches: $2.80; to other cache misses: $0.9500." in saved
    assert "current rate" not in saved


def test_a_running_week_still_projects(db):
    user = oauth_user("runner")
    UsageEvent.objects.bulk_create([event(user, at=WEEK_START + H, w1=20_000_000)])  # $200 in the first hours
    [report] = cap_reports_build(user_ids=[user.pk], now=WEEK_START + D, week=WEEK)
    text = delivery.cap_report_text(report)
    assert "At the current rate the cap runs out on Mon 2026-03-02 " not in text  # 200 a day: Tuesday
    assert "At the current rate the cap runs out on Tue 2026-03-03 06:00 UTC." in text
    assert "week is over" not in text


def test_cap_report_command_for_a_finished_week(db):
    _scenario(oauth_user("grace"))
    out = io.StringIO()
    call_command("cap_report", "--week", WEEK, "--user", "grace", "--no-send", stdout=out, stderr=io.StringIO())
    assert "The week is over: 1.86% of the cap used; it did not run out." in out.getvalue()
    assert "At the current rate" not in out.getvalue()
