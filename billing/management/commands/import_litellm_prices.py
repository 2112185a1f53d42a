"""manage.py import_litellm_prices FILE [--dry-run] [--effective ISO]"""

from datetime import UTC
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from billing.litellm_import import litellm_parse, litellm_prices_import


class Command(BaseCommand):
    help = "Create price versions from LiteLLM's model_prices_and_context_window.json where prices changed."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="report only, write nothing")
        parser.add_argument(
            "--effective", default=None, help="ISO date-time the new versions start (default now)"
        )

    def handle(self, *args, file, dry_run, effective, **options):
        try:
            data = litellm_parse(file.read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {file}: {exc}") from exc
        if not isinstance(data, dict):
            raise CommandError(f"{file}: expected a JSON object keyed by model name")
        at = parse_datetime(effective) if effective else timezone.now()
        if at is None:
            raise CommandError(f"--effective: not an ISO date-time: {effective!r}")
        if timezone.is_naive(at):
            at = at.replace(tzinfo=UTC)
        report = litellm_prices_import(data=data, effective_from=at, dry_run=dry_run)
        verb = "would create" if dry_run else "created"
        for line in report.created:
            self.stdout.write(f"{verb} {line}")
        for line in report.unchanged:
            self.stdout.write(f"unchanged {line}")
        for key, reason in report.skipped:
            self.stdout.write(f"skipped {key}: {reason}")
        self.stdout.write(
            f"{len(report.created)} {verb}, {len(report.unchanged)} unchanged, "
            f"{len(report.skipped)} skipped, {report.not_anthropic} entries of other providers ignored"
        )
