"""Token authentication: the user and subscription come with the token, in one query."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from billing.models import Subscription
from billing.subscriptions.authentication import token_with_user
from billing.subscriptions.services import subscription_set
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_the_token_brings_its_user_and_subscription_in_one_query():
    subscription, key = subscription_set(username="ada", plan="max5", billing_mode="oauth")
    expected = Token.objects.select_related("user", "user__subscription").get(key=key)

    with CaptureQueriesContext(connection) as queries:
        token = token_with_user(key)
        user, loaded = token.user, token.user.subscription
        assert loaded.user is user

    assert len(queries) == 1
    assert _fields(token) == _fields(expected) and _fields(user) == _fields(expected.user)
    assert _fields(loaded) == _fields(subscription)


def test_a_user_without_subscription_and_an_unknown_key():
    user = get_user_model().objects.create(username="bo")
    key = Token.objects.create(user=user).key

    with CaptureQueriesContext(connection) as queries:
        token = token_with_user(key)
        with pytest.raises(Subscription.DoesNotExist):
            token.user.subscription  # noqa: B018  (cached as missing: no second query)
    assert len(queries) == 1
    assert token_with_user("0" * 40) is None


def test_an_inactive_user_is_refused(db):
    client = client_for("gone", "pro")
    get_user_model().objects.filter(username="gone").update(is_active=False)
    response = client.get("/api/chat/sessions")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert "inactive" in response.json()["message"]


@pytest.mark.parametrize("scheme", ["Token", "Bearer", "bearer"])
def test_the_key_is_accepted_as_token_or_bearer(db, scheme):
    client = client_for("either", "pro")
    key = Token.objects.get(user=client.user).key
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    response = client.get("/api/chat/sessions")
    assert response.status_code == 200, response.content
    assert response.json() == {"sessions": []}


@pytest.mark.parametrize("scheme", ["Token", "Bearer"])
def test_a_wrong_key_says_so_whichever_the_scheme(db, scheme):
    client = client_for("wrong-key", "pro")
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {'0' * 40}")
    response = client.get("/api/chat/sessions")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response.json()["message"] == "Invalid token."


def test_a_bearer_header_without_a_key_is_refused_as_such(db):
    client = client_for("no-key", "pro")
    client.credentials(HTTP_AUTHORIZATION="Bearer")
    response = client.get("/api/chat/sessions")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert "No credentials provided" in response.json()["message"]
