from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from billing.models import BillingMode, Plan
from billing.subscriptions.services import subscription_set

DEMO_USERS = [
    ("demo-free", Plan.FREE, BillingMode.METERED),
    ("demo-pro", Plan.PRO, BillingMode.METERED),
    # A flat-rate plan (Claude Max through OAuth): its turns burn the weekly cap, not dollars, so
    # /api/billing/cap and a quote's cap share have something to show.
    ("demo-max", Plan.MAX5, BillingMode.OAUTH),
]


class Command(BaseCommand):
    help = "Create the demo users (password 'demo') and print their API tokens."

    def handle(self, *args, **options):
        for username, plan, mode in DEMO_USERS:
            _, token = subscription_set(username=username, plan=plan, billing_mode=mode)
            user = get_user_model().objects.get(username=username)
            user.set_password("demo")
            user.save(update_fields=["password"])
            self.stdout.write(f"{username:10} plan={plan:5} billing={mode:7} password=demo token={token}")
