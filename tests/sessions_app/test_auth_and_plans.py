import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import Subscription
from billing.subscriptions.entitlements import model_access_check
from billing.subscriptions.services import subscription_set

pytestmark = pytest.mark.django_db


def test_token_for_username_and_password(anon_client, django_user_model):
    django_user_model.objects.create_user("alice", password="s3cret-pass")

    response = anon_client.post("/api/auth/token", {"username": "alice", "password": "s3cret-pass"}, format="json")

    assert response.status_code == 200
    token = response.json()["token"]
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert anon_client.get("/api/chat/sessions").status_code == 200


@pytest.mark.parametrize(
    "payload", [{"username": "alice", "password": "wrong"}, {"username": "nobody", "password": "x"}]
)
def test_wrong_credentials_are_401(anon_client, django_user_model, payload):
    django_user_model.objects.create_user("alice", password="s3cret-pass")
    response = anon_client.post("/api/auth/token", payload, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


def test_token_request_needs_both_fields(anon_client):
    response = anon_client.post("/api/auth/token", {"username": "alice"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert "password" in response.json()["extra"]["fields"]


def test_set_plan_creates_the_user_and_prints_the_token(capsys):
    call_command("set_plan", "bob", "max5", "--billing", "oauth", "--status", "trialing")

    token = capsys.readouterr().out.strip()
    subscription = Subscription.objects.get(user__username="bob")
    assert (subscription.plan, subscription.status, subscription.billing_mode) == (
        "max5",
        "trialing",
        "oauth",
    )
    assert subscription.user.auth_token.key == token

    call_command("set_plan", "bob", "pro")  # existing user: same token, billing mode kept
    assert capsys.readouterr().out.strip() == token
    subscription.refresh_from_db()
    assert (subscription.plan, subscription.status, subscription.billing_mode) == ("pro", "active", "oauth")


def test_set_plan_rejects_unknown_plans():
    with pytest.raises(CommandError):
        call_command("set_plan", "bob", "platinum")


@pytest.mark.parametrize(
    ("plan", "status", "model", "expected"),
    [
        ("free", "active", "haiku", None),
        ("free", "active", "sonnet", "subscription_required"),
        ("pro", "canceled", "haiku", None),  # the free model needs no subscription
        ("pro", "canceled", "opus", "subscription_required"),
        ("pro", "active", "opus", None),
        ("pro", "active", "sonnet[1m]", "model_not_in_plan"),
        ("max5", "active", "sonnet[1m]", None),
        ("max5", "active", "opus[1m]", "model_not_in_plan"),
        ("max20", "trialing", "opus[1m]", None),
        ("max20", "active", "claude-opus-4-6", "unknown_model"),
        # Fable, the top model, on every plan that includes Opus.
        ("free", "active", "fable", "subscription_required"),
        ("pro", "canceled", "fable", "subscription_required"),
        ("pro", "active", "fable", None),
        ("max5", "active", "fable", None),
        ("max20", "active", "fable", None),
    ],
)
def test_entitlements(plan, status, model, expected):
    subscription, _ = subscription_set(username=f"u-{plan}-{status}", plan=plan, status=status)
    if expected is None:
        model_access_check(user=subscription.user, model_id=model)
    else:
        with pytest.raises(Exception) as info:
            model_access_check(user=subscription.user, model_id=model)
        assert info.value.code == expected


def test_user_without_subscription_is_free(django_user_model):
    user = django_user_model.objects.create_user("plain")
    model_access_check(user=user, model_id="haiku")
    with pytest.raises(Exception) as info:
        model_access_check(user=user, model_id="sonnet")
    assert info.value.code == "subscription_required"
