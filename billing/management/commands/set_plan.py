from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from billing.models import BillingMode, Plan, SubscriptionStatus
from billing.subscriptions.services import subscription_set


class Command(BaseCommand):
    help = "Create the user if missing, set their subscription, and print their API token."

    def add_arguments(self, parser):
        parser.add_argument("username", help="the user (created, with an API token, when missing)")
        parser.add_argument("plan", choices=Plan.values, help="the subscription's plan")
        parser.add_argument(
            "--status",
            choices=SubscriptionStatus.values,
            default=SubscriptionStatus.ACTIVE,
            help="the subscription's status (default: active)",
        )
        parser.add_argument(
            "--billing",
            choices=BillingMode.values,
            default=None,
            help="metered (API dollars) or oauth (flat-rate plan with a weekly cap)",
        )

    def handle(self, *args, username, plan, status, billing, **options):
        # The username as the admin's form would take it (the user is created when missing), or a clear error.
        user_model = get_user_model()
        try:
            user_model._meta.get_field(user_model.USERNAME_FIELD).clean(username, None)
        except ValidationError as exc:
            raise CommandError(f"username {username!r}: {' '.join(exc.messages)}") from exc
        try:
            subscription, token = subscription_set(username=username, plan=plan, status=status, billing_mode=billing)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(
            f"{username}: plan={subscription.plan} status={subscription.status} billing={subscription.billing_mode}"
        )
        # The token alone on stdout, so scripts can capture it: TOKEN=$(manage.py set_plan ...)
        self.stdout.write(token)
