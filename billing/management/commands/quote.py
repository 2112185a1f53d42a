"""Print the switch quote for a session in a given state.

    manage.py quote --from haiku --to opus --prefix-tokens 100000 [--new-tokens N]
                    [--to-prefix-tokens N] [--idle SECONDS] [--ttl 5m|1h] [--plan PLAN]
                    [--at ISO] [--json]

The session is "on --from with --prefix-tokens of conversation, all of it cached, idle
for --idle seconds": the snapshot is built by replaying that request through the same
cache tracker the service uses, and the quote is the same `quote_compute` the API calls.
With --plan the session is a flat-rate (OAuth) user's on that plan: the quote also shows the
switch's share of the plan's weekly cap (an estimate; plans without a cap show n/a).
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.caps.plan_caps import cap_model_for_plan
from billing.catalog.price_snapshots import prices_from_version
from billing.catalog.selectors import NoPriceVersion, UnknownModel, model_resolve, price_version_for
from billing.management.arguments import idle_seconds, iso_datetime, token_count
from billing.models import Plan
from billing.money import usd_display
from billing.quotes.cache_tracker import TTL_SECONDS, cache_snapshot_warm
from billing.quotes.engine import quote_compute


class Command(BaseCommand):
    help = "Quote a model switch for a session with a given prefix, idle time and TTL."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="from_model", required=True, help="picker id or API id")
        parser.add_argument("--to", dest="to_model", required=True, help="picker id or API id")
        parser.add_argument(
            "--prefix-tokens", type=token_count, required=True, help="conversation size (from-model tokens)"
        )
        parser.add_argument("--new-tokens", type=token_count, default=0, help="size of the next user message")
        parser.add_argument("--to-prefix-tokens", type=token_count, default=None, help="exact count with the new model")
        parser.add_argument("--idle", type=idle_seconds, default=0, help="seconds since the last request")
        parser.add_argument(
            "--ttl", choices=sorted(TTL_SECONDS), default="5m", help="cache lifetime the session writes with"
        )
        parser.add_argument(
            "--plan",
            choices=Plan.values,
            default=None,
            help="flat-rate plan of the user: adds the share of its weekly cap (estimate)",
        )
        parser.add_argument("--at", type=iso_datetime, default=None, help="ISO time to price at (default: now)")
        parser.add_argument("--json", action="store_true", help="the API's JSON keys")

    def handle(self, *args, **o):
        now = o["at"] or timezone.now()
        try:
            src = model_resolve(model_id=o["from_model"], at=now)
            dst = model_resolve(model_id=o["to_model"], at=now)
            prices_from = prices_from_version(price_version_for(api_model=src.priced_model, at=now))
            prices_to = prices_from_version(price_version_for(api_model=dst.priced_model, at=now))
        except (UnknownModel, NoPriceVersion) as exc:
            raise CommandError(str(exc)) from exc
        cap = None
        if o["plan"]:
            cap = cap_model_for_plan(plan=o["plan"], prices=[prices_from, prices_to], ttl=o["ttl"])
        snapshot = cache_snapshot_warm(
            model=src.api_id, prefix_tokens=o["prefix_tokens"], idle_seconds=o["idle"], now=now, ttl=o["ttl"]
        )
        figures = quote_compute(
            from_model=src.api_id,
            to_model=dst.api_id,
            snapshot=snapshot,
            prices_from=prices_from,
            prices_to=prices_to,
            new_tokens=o["new_tokens"],
            now=now,
            plan=o["plan"],
            cap=cap,
            to_prefix_tokens=o["to_prefix_tokens"],
        )
        data = figures.to_json()
        if o["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        rows = [
            ("switch", f"{o['from_model']} ({src.api_id}) -> {o['to_model']} ({dst.api_id})"),
            ("session", f"{o['prefix_tokens']} tokens, idle {o['idle']:g}s, TTL {o['ttl']}"),
            ("prefix tokens", _prefix(data["prefixTokens"])),
            ("cache state", f"from {data['cacheState']['from']}, to {data['cacheState']['to']}"),
            ("next turn, stay", usd_display(data["nextTurn"]["stayUsd"], exact=True)),
            ("next turn, switch", usd_display(data["nextTurn"]["switchUsd"], exact=True)),
            ("switch tax", usd_display(data["taxUsd"], exact=True)),
            ("  cache rebuild", usd_display(data["breakdown"]["cacheRebuildUsd"], exact=True)),
            ("  rate difference", usd_display(data["breakdown"]["rateDeltaUsd"], exact=True)),
            ("per turn once warm", usd_display(data["steadyStateDeltaUsdPerTurn"], exact=True)),
            ("break-even turns", "never" if data["breakEvenTurns"] is None else str(data["breakEvenTurns"])),
            ("first-token delay", f"+{data['ttftPenaltyMs']} ms (estimate)"),
            ("weekly cap", _cap(o["plan"], data["capPercent"])),
            ("warnings", ", ".join(data["warnings"]) or "none"),
            ("prices", f"{data['priceVersion']['from']} / {data['priceVersion']['to']}"),
        ]
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            self.stdout.write(f"{label.ljust(width)}  {value}")


def _prefix(p: dict) -> str:
    if p["toLow"] == p["toHigh"]:
        return f"{p['from']} -> {p['to']}"
    return f"{p['from']} -> {p['to']} (range {p['toLow']}..{p['toHigh']}, estimate)"


def _cap(plan: str | None, percent: str | None) -> str:
    if percent is not None:
        return f"{percent}% of the {plan} plan's week (estimate)"
    return "n/a (no --plan)" if plan is None else f"n/a (the {plan} plan has no weekly cap)"
