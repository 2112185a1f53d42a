from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token


class TokenWithSubscriptionAuthentication(TokenAuthentication):
    """DRF's token authentication, loading the user's subscription in the same query: nearly
    every request checks entitlements or quotes with it, and here a query costs more than a join."""

    def authenticate_credentials(self, key):
        try:
            token = Token.objects.select_related("user", "user__subscription").get(key=key)
        except Token.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token
