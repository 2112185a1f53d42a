from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token

from billing.models import Subscription
from mk0r.db import ModelColumns, prepared_cursor


class TokenWithSubscriptionAuthentication(TokenAuthentication):
    """DRF's token authentication, loading the user's subscription in the same query: nearly
    every request checks entitlements or quotes with it, and here a query costs more than a join.

    The header is `Authorization: Token <key>` or, as most HTTP clients and OpenAPI tools send
    it, `Authorization: Bearer <key>`: the same key either way."""

    keywords = ("token", "bearer")

    def authenticate(self, request):
        scheme, _, _ = get_authorization_header(request).partition(b" ")
        if scheme.lower().decode("latin-1") not in self.keywords:
            return None
        # DRF's own parsing and messages, for whichever scheme was sent.
        self.keyword = scheme.decode("latin-1")
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        token = token_with_user(key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token


def token_with_user(key: str) -> Token | None:
    """The token with its user and the user's subscription (or None) attached, as
    `select_related("user", "user__subscription")` gives them.

    Every API request runs this. On PostgreSQL it is one statement, prepared once per connection
    and hydrated with `Model.from_db`: the ORM would spend several times the database's own time
    compiling the join and building the objects. Elsewhere it is that ORM query.
    """
    if connection.vendor != "postgresql":
        return Token.objects.select_related("user", "user__subscription").filter(key=key).first()
    sql, parts = _token_sql()
    with prepared_cursor() as cursor:
        cursor.execute(sql, [key])
        row = cursor.fetchone()
    if row is None:
        return None
    token, user, subscription = (part.build(row) for part in parts)
    Token.user.field.set_cached_value(token, user)
    get_user_model().subscription.related.set_cached_value(user, subscription)
    if subscription is not None:
        Subscription.user.field.set_cached_value(subscription, user)
    return token


@cache
def _token_sql() -> tuple[str, tuple[ModelColumns, ModelColumns, ModelColumns]]:
    user_model = get_user_model()
    token = ModelColumns(Token, "t")
    user = ModelColumns(user_model, "u", token.span.stop)
    subscription = ModelColumns(Subscription, "s", user.span.stop)
    columns = f"{token.sql}, {user.sql}, {subscription.sql}"
    user_pk = connection.ops.quote_name(user_model._meta.pk.column)
    token_user = connection.ops.quote_name(Token.user.field.column)
    subscription_user = connection.ops.quote_name(Subscription.user.field.column)
    token_key = connection.ops.quote_name(Token._meta.pk.column)
    # Built from the models' own metadata; the key is a parameter.
    sql = (
        f"SELECT {columns} FROM {Token._meta.db_table} t"  # noqa: S608
        f" JOIN {user_model._meta.db_table} u ON u.{user_pk} = t.{token_user}"
        f" LEFT JOIN {Subscription._meta.db_table} s ON s.{subscription_user} = u.{user_pk}"
        f" WHERE t.{token_key} = %s"
    )
    return sql, (token, user, subscription)
