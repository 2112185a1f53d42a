"""The session lease that keeps switches and resumes of one session apart (sessions_app.leases):
taken with the read, given back with the outcome's write, never kept past the request."""

import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection
from django.utils import timezone

from billing.catalog.selectors import price_version_for
from billing.models import SwitchOutcome, SwitchRecord
from sessions_app.bridge_client import BridgeClient
from sessions_app.errors import SessionBusy, SessionClosed, SessionNotFound
from sessions_app.leases import session_lease_end, session_lease_take
from sessions_app.models import AgentSession
from sessions_app.selectors import session_with_switch_context
from tests.conftest import client_for

from .api import session_start

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_waiting(settings):
    settings.SESSION_LEASE_WAIT_SECONDS = 0


@pytest.fixture
def session():
    user = get_user_model().objects.create(username="lease-user")
    return AgentSession.objects.create(user=user, provider="local", model_id="sonnet", status="ready")


def _held(session) -> uuid.UUID | None:
    return AgentSession.objects.values_list("lease_token", flat=True).get(pk=session.pk)


def test_one_holder_at_a_time(session):
    now = timezone.now()
    lease = session_lease_take(user=session.user, key=session.key, now=now)

    with pytest.raises(SessionBusy) as busy:
        session_lease_take(user=session.user, key=str(session.key), now=now)

    assert busy.value.extra == {"retryAfterSeconds": 1}
    assert _held(session) == lease.token == lease.session.lease_token
    assert session_lease_end(lease)
    assert _held(session) is None and lease.session.lease_token is None
    session_lease_take(user=session.user, key=session.key, now=now)


def test_the_lease_reads_what_a_quote_reads(session):
    now = timezone.now()
    _, expected = session_with_switch_context(user=session.user, key=session.key, now=now)

    lease = session_lease_take(user=session.user, key=session.key, now=now)

    assert lease.context == expected
    assert (lease.session.pk, lease.session.model_id) == (session.pk, "sonnet")


def test_a_lease_outlasting_every_bridge_call_is_taken_over(session, settings):
    settings.BRIDGE_RETRIES, settings.BRIDGE_CONNECT_TIMEOUT, settings.BRIDGE_READ_TIMEOUT = 1, 2.0, 8.0
    now = timezone.now()
    stale = session_lease_take(user=session.user, key=session.key, now=now)
    expires_at = AgentSession.objects.values_list("lease_expires_at", flat=True).get(pk=session.pk)
    # Two attempts of 2 s + 8 s, 0.1 s of backoff, and the 5 s margin.
    assert expires_at == now + timedelta(seconds=25.1)

    with pytest.raises(SessionBusy):
        session_lease_take(user=session.user, key=session.key, now=expires_at - timedelta(milliseconds=1))
    fresh = session_lease_take(user=session.user, key=session.key, now=expires_at)

    # The old holder finds its lease gone, and its write does not happen.
    assert not session_lease_end(stale, values={"model_id": "opus"})
    assert AgentSession.objects.get(pk=session.pk).model_id == "sonnet"
    assert _held(session) == fresh.token


def test_closed_missing_and_foreign_sessions_are_refused(session):
    now = timezone.now()
    stranger = get_user_model().objects.create(username="lease-stranger")
    for user, key in ((stranger, session.key), (session.user, uuid.uuid4()), (session.user, "not-a-uuid")):
        with pytest.raises(SessionNotFound):
            session_lease_take(user=user, key=key, now=now)
    AgentSession.objects.filter(pk=session.pk).update(status="closed")
    with pytest.raises(SessionClosed) as closed:
        session_lease_take(user=session.user, key=session.key, now=now)
    assert closed.value.extra == {"status": "closed"}
    assert _held(session) is None


def _record(session) -> SwitchRecord:
    version = price_version_for(api_model="claude-haiku-4-5", at=timezone.now())
    return SwitchRecord(
        user=session.user, session=session, from_model_id="sonnet", to_model_id="opus", price_version_from=version,
        price_version_to=version, quoted_tax_usd=Decimal("0"), quote_payload={}, confirmed=False,
        outcome=SwitchOutcome.APPLIED,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_the_outcome_and_the_lease_back_are_written_all_or_nothing():
    user = get_user_model().objects.create(username="lease-atomic")
    session = AgentSession.objects.create(user=user, provider="local", model_id="sonnet", status="ready")
    lease = session_lease_take(user=user, key=session.key, now=timezone.now())
    broken = _record(session)
    broken.outcome = None  # the ledger row fails (NOT NULL), after the session's own update

    with pytest.raises(IntegrityError):
        session_lease_end(lease, values={"model_id": "opus"}, inserts=[broken])

    assert AgentSession.objects.values_list("model_id", "lease_token").get(pk=session.pk) == ("sonnet", lease.token)
    assert lease.session.lease_token == lease.token and not SwitchRecord.objects.exists()
    record = _record(session)
    assert session_lease_end(lease, values={"model_id": "opus"}, inserts=[record])
    assert AgentSession.objects.values_list("model_id", "lease_token").get(pk=session.pk) == ("opus", None)
    assert list(SwitchRecord.objects.values_list("pk", flat=True)) == [record.pk]


def test_a_lost_lease_writes_none_of_the_outcome(session):
    stale = session_lease_take(user=session.user, key=session.key, now=timezone.now())
    AgentSession.objects.filter(pk=session.pk).update(lease_token=uuid.uuid4())  # taken over

    assert not session_lease_end(stale, values={"model_id": "opus"}, inserts=[_record(session)])

    stored = AgentSession.objects.get(pk=session.pk)
    assert (stored.model_id, stored.model_unverified) == ("sonnet", False)
    assert not SwitchRecord.objects.exists()
    assert stale.session.lease_token == stale.token  # the holder's copy is not released either


@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_while_the_lease_is_held():
    """The bridge calls happen between the take and the end: no transaction may span them."""
    user = get_user_model().objects.create(username="lease-autocommit")
    session = AgentSession.objects.create(user=user, provider="local", model_id="sonnet", status="ready")

    lease = session_lease_take(user=user, key=session.key, now=timezone.now())

    assert not connection.in_atomic_block and connection.get_autocommit()
    if connection.vendor == "postgresql":
        from psycopg import pq

        assert connection.connection.info.transaction_status == pq.TransactionStatus.IDLE
    assert session_lease_end(lease, values={"model_id": "opus"})
    assert AgentSession.objects.get(pk=session.pk).model_id == "opus"


def _switch(client, key, model_id="sonnet"):
    return client.post("/api/chat/model", {"sessionKey": key, "modelId": model_id}, format="json")


def _lease_of(key) -> uuid.UUID | None:
    return AgentSession.objects.values_list("lease_token", flat=True).get(key=key)


def test_a_switch_while_another_holds_the_session_is_409_busy(pro_client, bridge):
    key = session_start(pro_client)["sessionKey"]
    session = AgentSession.objects.get(key=key)
    session_lease_take(user=session.user, key=key, now=timezone.now())
    calls = len(bridge.paths())

    response = _switch(pro_client, key)

    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "session_busy" and response["Retry-After"] == "1"
    assert AgentSession.objects.get(key=key).model_id == "haiku"
    assert not SwitchRecord.objects.exists() and len(bridge.paths()) == calls


def test_every_way_out_of_a_switch_gives_the_lease_back(pro_client, bridge, monkeypatch):
    key = session_start(pro_client)["sessionKey"]

    assert _switch(pro_client, key, "sonnet").status_code == 200  # applied
    assert _lease_of(key) is None
    assert _switch(pro_client, key, "sonnet").status_code == 200  # already on it: nothing to do
    assert _lease_of(key) is None
    bridge.fail(500, "agent_error", times=1)
    assert _switch(pro_client, key, "opus").status_code == 502  # the agent refused
    assert _lease_of(key) is None
    assert _switch(pro_client, key, "opus").status_code == 200
    assert _lease_of(key) is None

    def broken(*args, **kwargs):
        raise RuntimeError("a bug between the lease and the bridge call")

    monkeypatch.setattr("sessions_app.switching.switch_confirmation", broken)
    with pytest.raises(RuntimeError):
        _switch(pro_client, key, "haiku")
    assert _lease_of(key) is None
    outcomes = list(SwitchRecord.objects.order_by("created_at").values_list("to_model_id", "outcome"))
    assert outcomes == [("sonnet", "applied"), ("opus", "failed"), ("opus", "applied")]


def test_a_switch_that_lost_its_lease_still_lands_in_the_ledger(pro_client, bridge, monkeypatch):
    key = session_start(pro_client)["sessionKey"]
    set_model = BridgeClient.set_model
    intruder = uuid.uuid4()

    def slow_set_model(self, **kwargs):
        # The call outlasts the lease, and another request takes the session meanwhile.
        AgentSession.objects.filter(key=key).update(lease_token=intruder)
        return set_model(self, **kwargs)

    monkeypatch.setattr(BridgeClient, "set_model", slow_set_model)
    response = _switch(pro_client, key, "sonnet")

    assert response.status_code == 409 and response.json()["code"] == "session_busy"
    session = AgentSession.objects.get(key=key)
    # The session is the other request's to update; what the agent did is still recorded, as
    # unknown (which of the two requests the agent applied last is not known), and the session
    # is flagged so that its next request asks the agent.
    assert (session.model_id, session.lease_token, session.model_unverified) == ("haiku", intruder, True)
    assert list(SwitchRecord.objects.values_list("to_model_id", "outcome")) == [("sonnet", "unknown")]


def test_resume_holds_the_lease_and_gives_it_back(pro_client, bridge):
    key = session_start(pro_client)["sessionKey"]
    session = AgentSession.objects.get(key=key)
    lease = session_lease_take(user=session.user, key=key, now=timezone.now())

    busy = pro_client.post(f"/api/chat/sessions/{key}/resume", format="json")
    session_lease_end(lease)
    resumed = pro_client.post(f"/api/chat/sessions/{key}/resume", format="json")

    assert busy.status_code == 409 and busy.json()["code"] == "session_busy"
    assert resumed.status_code == 200, resumed.json()
    assert AgentSession.objects.get(key=key).acp_session_id == resumed.json()["sessionId"]
    assert _lease_of(key) is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_double_click_switches_twice_in_turn(bridge, settings):
    if connection.vendor != "postgresql":
        pytest.skip("a race needs PostgreSQL (set DATABASE_URL)")
    settings.SESSION_LEASE_WAIT_SECONDS = 5
    client = client_for("double-clicker", "pro")
    key = session_start(client)["sessionKey"]
    token = client._credentials["HTTP_AUTHORIZATION"]
    results: dict[str, int] = {}
    start = threading.Barrier(2)

    def click(model_id: str) -> None:
        from django.db import connections
        from rest_framework.test import APIClient

        clicker = APIClient()
        clicker.credentials(HTTP_AUTHORIZATION=token)
        start.wait()
        try:
            results[model_id] = _switch(clicker, key, model_id).status_code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click, args=(model_id,)) for model_id in ("sonnet", "opus")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The second waited for the first's lease instead of failing, and the ledger says in which order.
    assert results == {"sonnet": 200, "opus": 200}
    ledger = list(SwitchRecord.objects.order_by("created_at").values_list("from_model_id", "to_model_id"))
    assert ledger in ([("haiku", "sonnet"), ("sonnet", "opus")], [("haiku", "opus"), ("opus", "sonnet")])
    assert AgentSession.objects.get(key=key).model_id == ledger[-1][1]
    assert _lease_of(key) is None
