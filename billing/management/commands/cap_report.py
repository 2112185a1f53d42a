import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from billing.caps.delivery import cap_report_deliver, cap_report_json, cap_report_text
from billing.caps.reports import cap_reports_build, oauth_user_ids
from billing.caps.weeks import InvalidWeek, iso_week_start


class Command(BaseCommand):
    help = (
        "Build the weekly cap reports (estimates) synchronously, with the code the Celery task runs, "
        "send what is due (alerts, finished weeks) and print them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--week", help="ISO week, e.g. 2026-W10 (default: each user's current week)")
        parser.add_argument("--user", help="one username (default: every user on a flat-rate plan)")
        parser.add_argument("--no-send", action="store_true", help="store and print, send nothing")
        parser.add_argument("--json", action="store_true", help="one JSON object per line")

    def handle(self, *args, **options):
        week, user, no_send, as_json = options["week"], options["user"], options["no_send"], options["json"]
        if week:
            try:
                iso_week_start(week)
            except InvalidWeek as exc:
                raise CommandError(exc.message) from exc
        if user:
            found = get_user_model().objects.filter(username=user).values_list("pk", flat=True).first()
            if found is None:
                raise CommandError(f"No user {user!r}.")
            chunks = [[found]]
        else:
            chunks = oauth_user_ids(chunk=settings.CAP_REPORT_CHUNK)
        count = 0
        users = get_user_model().objects
        for ids in chunks:
            names = dict(users.filter(pk__in=ids).values_list("pk", "username"))
            for report in cap_reports_build(user_ids=ids, week=week):
                if not no_send:
                    cap_report_deliver(report_id=report.pk)
                    report.refresh_from_db(fields=["sent_at"])
                count += 1
                if as_json:
                    self.stdout.write(_dumps({"user": names[report.user_id], **cap_report_json(report)}))
                else:
                    self.stdout.write(f"== {names[report.user_id]}\n{cap_report_text(report)}\n")
        if user and not count:
            raise CommandError(f"{user} is not on a flat-rate plan with a weekly cap.")
        self.stderr.write(f"{count} report(s)")


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True)
