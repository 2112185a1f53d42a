"""Prepared statements for the per-request queries: the rows they write are the rows the ORM
writes, and PostgreSQL really keeps their plans."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.catalog.selectors import price_version_for
from billing.models import Quote, SwitchOutcome, SwitchRecord
from billing.subscriptions.authentication import token_with_user
from mk0r.db import RowUpdate, insert_row, rows_write
from sessions_app.models import AgentSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def session():
    user = get_user_model().objects.create(username="db-user")
    return AgentSession.objects.create(user=user, provider="local", model_id="haiku", status="ready")


def _quote(session, now) -> Quote:
    version = price_version_for(api_model="claude-opus-4-6", at=now)
    return Quote(
        user=session.user, session=session, from_model_id="haiku", to_model_id="opus", price_version_from=version,
        price_version_to=version, tax_usd=Decimal("0.615000"), payload={"taxUsd": "0.615000", "warnings": []},
        expires_at=now + timedelta(minutes=2),
    )  # fmt: skip


def _admin_dsn() -> str:
    """A second connection to the same server, to act on the test's own."""
    settings = connection.settings_dict
    return f"host={settings['HOST']} port={settings['PORT'] or 5432} user={settings['USER']} dbname=postgres"


def _row(model, pk) -> dict:
    return {f.attname: getattr(model.objects.get(pk=pk), f.attname) for f in model._meta.concrete_fields}


def test_insert_row_writes_what_save_writes(session):
    now = timezone.now()
    by_save, by_insert = _quote(session, now), _quote(session, now)
    by_save.save()
    insert_row(by_insert)

    assert not by_insert._state.adding and by_insert.created_at is not None
    stored = _row(Quote, by_insert.pk)
    assert stored == {**_row(Quote, by_save.pk), "id": by_insert.pk, "created_at": by_insert.created_at}
    assert stored["payload"] == {"taxUsd": "0.615000", "warnings": []}


def test_insert_row_reads_back_a_generated_key(session):
    version = price_version_for(api_model="claude-haiku-4-5", at=timezone.now())
    record = SwitchRecord(
        user=session.user, session=session, from_model_id="haiku", to_model_id="sonnet", price_version_from=version,
        price_version_to=version, quoted_tax_usd=Decimal("0"), quote_payload={}, confirmed=False,
        outcome=SwitchOutcome.APPLIED,
    )  # fmt: skip
    insert_row(record)
    assert record.pk is not None
    assert SwitchRecord.objects.get(pk=record.pk).to_model_id == "sonnet"


def _record(session) -> SwitchRecord:
    version = price_version_for(api_model="claude-haiku-4-5", at=timezone.now())
    return SwitchRecord(
        user=session.user, session=session, from_model_id="haiku", to_model_id="opus", price_version_from=version,
        price_version_to=version, quoted_tax_usd=Decimal("0"), quote_payload={"taxUsd": "0"}, confirmed=True,
        outcome=SwitchOutcome.APPLIED,
    )  # fmt: skip


def test_rows_write_applies_everything_when_the_guard_matches(session):
    now = timezone.now()
    quote = _quote(session, now)
    quote.save()
    record = _record(session)
    guard = RowUpdate(AgentSession, session.pk, {"model_id": "opus", "updated_at": now}, where={"closed_at": None})
    claim = RowUpdate(Quote, quote.pk, {"used_at": now}, where={"used_at": None})

    assert rows_write(guard=guard, inserts=[record], updates=[claim])

    stored = AgentSession.objects.get(pk=session.pk)
    assert (stored.model_id, stored.status, stored.updated_at) == ("opus", "ready", now)  # only what was named
    assert record.pk is not None and not record._state.adding
    assert _row(SwitchRecord, record.pk)["quote_payload"] == {"taxUsd": "0"}
    assert Quote.objects.get(pk=quote.pk).used_at == now


def test_rows_write_writes_nothing_when_the_guard_does_not_match(session):
    now = timezone.now()
    quote = _quote(session, now)
    quote.save()
    record = _record(session)
    guard = RowUpdate(AgentSession, session.pk, {"model_id": "opus"}, where={"status": "closed"})
    claim = RowUpdate(Quote, quote.pk, {"used_at": now})

    assert not rows_write(guard=guard, inserts=[record], updates=[claim])

    assert AgentSession.objects.get(pk=session.pk).model_id == "haiku"
    assert record.pk is None and not SwitchRecord.objects.exists()
    assert Quote.objects.get(pk=quote.pk).used_at is None


def test_rows_write_updates_only_where_their_own_conditions_hold(session):
    now = timezone.now()
    quote = _quote(session, now)
    quote.used_at = now - timedelta(seconds=5)
    quote.save()
    claim = RowUpdate(Quote, quote.pk, {"used_at": now}, where={"used_at": None})

    assert rows_write(guard=RowUpdate(AgentSession, session.pk, {"model_id": "opus"}), updates=[claim])

    assert Quote.objects.get(pk=quote.pk).used_at == now - timedelta(seconds=5)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_the_per_request_reads_are_prepared_on_the_server(session):
    from rest_framework.authtoken.models import Token

    key = Token.objects.create(user=session.user).key
    assert token_with_user(key).user == session.user
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in cursor.fetchall()]
    assert [s for s in statements if "authtoken_token" in s]
    # Django's own queries stay as Django runs them: neither prepared nor tracked for it.
    assert connection.connection.prepare_threshold is None
    assert not [s for s in statements if "pg_prepared_statements" in s]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="asynchronous commit is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_non_durable_insert_commits_asynchronously_for_itself_alone():
    user = get_user_model().objects.create(username="async-user")
    session = AgentSession.objects.create(user=user, provider="local", model_id="haiku", status="ready")
    quote = _quote(session, timezone.now())

    with CaptureQueriesContext(connection) as queries:
        insert_row(quote, durable=False)

    assert "synchronous_commit" in queries[0]["sql"]
    assert Quote.objects.get(pk=quote.pk).payload == quote.payload
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"  # the connection's own setting is untouched


def test_inside_a_transaction_a_non_durable_insert_stays_durable(session):
    with CaptureQueriesContext(connection) as queries:
        insert_row(_quote(session, timezone.now()), durable=False)
    assert "synchronous_commit" not in queries[0]["sql"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_dropped_is_replaced_before_the_first_prepared_query():
    """Django's per-request health check (CONN_HEALTH_CHECKS) finds it and opens another."""
    import psycopg
    from django.db import close_old_connections
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create(username="reconnect-user")
    key = Token.objects.create(user=user).key
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])  # returns once it is gone

    close_old_connections()  # what the start of the next request does
    assert token_with_user(key).user == user


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the health check is PostgreSQL's backend's")
@pytest.mark.django_db(transaction=True)
def test_the_health_check_of_a_connection_above_a_thousand_open_files():
    """A server process with a thousand open chat turns opens its database connections on file
    descriptors above 1,024."""
    import os
    import resource

    from django.db import close_old_connections

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if min(soft, hard) < 1200:
        pytest.skip("needs 1,200 open files")
    connection.close()
    taken = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        connection.ensure_connection()
        assert connection.connection.fileno() > 1024
        close_old_connections()  # the start of the next request
        connection.close_if_health_check_failed()
        assert connection.health_check_done
    finally:
        connection.close()
        for fd in taken:
            os.close(fd)
