"""manage.py import_litellm_prices FILE [--dry-run] [--effective ISO] [--no-input]

Shows, per model and column, the price versions the file would create (the version in force
and the file's price, per MTok), then applies them. --dry-run shows the difference only; a
person at a terminal is asked before anything is written, unless --no-input.
"""

import sys
from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.catalog.litellm_import import ImportPlan, litellm_parse, litellm_prices_apply, litellm_prices_plan
from billing.management.arguments import iso_datetime


class Command(BaseCommand):
    help = "Create price versions from LiteLLM's model_prices_and_context_window.json where prices changed."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="LiteLLM's model_prices_and_context_window.json")
        parser.add_argument("--dry-run", action="store_true", help="show the difference only, write nothing")
        parser.add_argument(
            "--effective", type=iso_datetime, default=None, help="ISO date-time the new versions start (default now)"
        )
        parser.add_argument(
            "--no-input",
            action="store_false",
            dest="interactive",
            help="apply without asking (asking happens only at a terminal)",
        )

    def handle(self, *args, file, dry_run, effective, interactive, **options):
        try:
            data = litellm_parse(file.read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {file}: {exc}") from exc
        if not isinstance(data, dict):
            raise CommandError(f"{file}: expected a JSON object keyed by model name")
        plan = litellm_prices_plan(data=data, effective_from=effective or timezone.now())
        self._show(plan)
        if dry_run or not plan.changes:
            self.stdout.write("nothing written" + (" (--dry-run)" if dry_run else ""))
            return
        if interactive and sys.stdin.isatty():
            answer = input(f"Create {len(plan.changes)} price version(s)? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                self.stdout.write("nothing written")
                return
        created = litellm_prices_apply(plan=plan)
        self.stdout.write(f"created {len(created)} price version(s): {', '.join(v.label for v in created)}")

    def _show(self, plan: ImportPlan) -> None:
        for change in plan.changes:
            self.stdout.write(f"{change.api_id}: new version {change.label} (after {change.current_label})")
            width = max(len(column) for column, _, _ in change.columns)
            for column, old, new in change.columns:
                self.stdout.write(f"    {column.ljust(width)}  {_figure(old)} -> {_figure(new)}")
        for line in plan.unchanged:
            self.stdout.write(f"unchanged {line}")
        for key, reason in plan.skipped:
            self.stdout.write(f"skipped {key}: {reason}")
        self.stdout.write(
            f"{len(plan.changes)} to create, {len(plan.unchanged)} unchanged, {len(plan.skipped)} skipped, "
            f"{plan.not_anthropic} entries of other providers ignored (prices in USD per MTok)"
        )


def _figure(value) -> str:
    """A price as written on the pricing page (3, 0.30 -> 0.3), a token threshold as is."""
    if value is None:
        return "none"
    return f"{value.normalize():f}" if isinstance(value, Decimal) else str(value)
