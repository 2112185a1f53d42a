"""Import Claude Code JSONL transcripts and report what they cost and how the cache did.

    manage.py import_claude_logs PATH... [--user USERNAME] [--json]

PATH: transcript files, or folders searched recursively for *.jsonl. Prints per session
and in total: cost (with the 5m/1h cache-write split), hit rate, every main-chain model
switch with its real tax, and the cache tracker's prediction error. With --user, the
requests are also stored as that user's usage events (idempotent per user: a re-import
adds nothing, another user's import of the same files counts for nothing); without it
nothing is written. Progress goes to stderr: a bar per step (reading, storing) on a
terminal, one summary line otherwise.
"""

import gc
import os
import time
from functools import partial

import orjson
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from billing.money import usd_display
from billing.usage.transcript_import import ImportReport, log_files, logs_import, usage_events_store
from mk0r.timefmt import iso_z

# A terminal that reports no size (a fresh pty, some CI consoles) still gets a bar this wide.
DEFAULT_COLUMNS = 80


class Command(BaseCommand):
    help = "Import Claude Code transcripts: cost, cache hit rate, switch taxes, tracker accuracy."
    # The system checks (URL conf, every view and serializer imported) would be a fifth of an
    # analysis run; `manage.py check` and the server run them.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", help="transcript files or folders (searched for *.jsonl)")
        parser.add_argument("--user", default=None, help="store the requests as this user's usage events")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **o):
        # A one-shot process: what it builds (a few hundred thousand small objects, no reference
        # cycles) lives until it exits, so the cyclic collector would only walk it again and
        # again; turned off for the whole run (re-enabling it after the replay started a
        # collection over everything at once). Reference counting still frees what is dropped.
        gc.disable()
        user = None
        if o["user"]:
            user = get_user_model().objects.filter(username=o["user"]).first()
            if user is None:
                raise CommandError(f"no user {o['user']!r}")
        try:
            files = log_files(o["paths"])
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from exc
        if not files:
            raise CommandError("no *.jsonl transcripts found")
        progress = _Progress(self.stderr)
        report = progress.parse(files)
        stored = None
        if user is not None:
            stored = progress.store(report, user)
        progress.summary()
        if o["json"]:
            data = report.to_json()
            if stored is not None:
                data["stored"] = {"user": user.get_username(), "created": stored[0], "alreadyThere": stored[1]}
            self.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())
            return
        self._print(report)
        if stored is not None:
            self.stdout.write(
                f"stored for {user.get_username()}: {stored[0]} new usage events, {stored[1]} already there"
            )

    def _print(self, report: ImportReport) -> None:
        out = self.stdout.write
        usd = partial(usd_display, exact=True)  # to the micro-dollar, as --json and the stored events
        for session in report.sessions:
            t = session.totals
            out(
                f"{session.session_id}  {iso_z(session.requests[0].request.at)[:16]}  {t.requests} requests"
                f" ({t.sidechain_requests} sub-agent)  {usd(t.total)}"
                f"  (5m writes {usd(t.write_5m)}, 1h writes {usd(t.write_1h)})"
                f"  hit rate {_pct(t.hit_rate)}  predicted within 1%: {_pct(t.within_share)}"
                f" of {t.eligible}"
            )
            for s in session.switches:
                out(
                    f"    switch {s.from_model} -> {s.to_model} at {s.at:%Y-%m-%d %H:%M:%S}:"
                    f" {s.prefix_tokens} tokens, paid {usd(s.actual_input_usd)} vs {usd(s.stay_usd)} staying,"
                    f" tax {usd(s.tax_usd)}"
                )
        data = report.to_json()
        t = report.totals
        rows = [
            ("files", f"{data['files']} ({data['lines']} lines)"),
            (
                "requests",
                f"{t.requests} ({t.requests - t.sidechain_requests} main chain, {t.sidechain_requests} sub-agent),"
                f" {len(report.sessions)} sessions",
            ),
            ("total", usd(t.total)),
            (
                "  by class",
                f"input {usd(t.input)}, 5m writes {usd(t.write_5m)}, 1h writes {usd(t.write_1h)},"
                f" reads {usd(t.read)}, output {usd(t.output)}",
            ),
            ("hit rate", f"{_pct(t.hit_rate)} over {t.eligible} eligible requests"),
            ("misses", ", ".join(f"{k} {v}" for k, v in sorted(data["missCauses"].items())) or "none"),
            (
                "switches",
                f"{data['switches']['count']} in {data['switches']['sessions']} sessions,"
                f" tax {usd(data['switches']['taxUsd'])}",
            ),
            (
                "tracker",
                f"cache read predicted within 1% on {t.within_tolerance} of {t.eligible} ({_pct(t.within_share)}),"
                f" exactly on {t.exact}",
            ),
        ]
        if report.unknown_models:
            rows.append(("unpriced", ", ".join(f"{k} ({v})" for k, v in report.unknown_models.items())))
        if report.stats.unpriceable_requests:
            rows.append(("unpriceable", f"{report.stats.unpriceable_requests} requests with token counts left out"))
        stats = report.stats
        if stats.synthetic_lines or stats.skipped_lines or stats.long_id_lines:
            skipped = f"{stats.synthetic_lines} <synthetic> lines, {stats.skipped_lines} others"
            if stats.long_id_lines:
                skipped += f", {stats.long_id_lines} with an id too long to store"
            rows.append(("skipped", skipped))
        width = max(len(label) for label, _ in rows)
        out("")
        for label, value in rows:
            out(f"{label.ljust(width)}  {value}")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


class _Progress:
    """Both steps on stderr: a bar each while it runs when stderr is a terminal (whatever its
    width), else one summary line at the end, for logs and pipes."""

    def __init__(self, stderr) -> None:
        self.stderr = stderr
        self.live = stderr.isatty()
        self.timings: list[str] = []

    def _bar(self, *, total: int, desc: str, unit: str):
        from tqdm import tqdm  # only a terminal needs it

        try:
            columns = os.get_terminal_size(self.stderr.fileno()).columns
        except (AttributeError, OSError, ValueError):
            columns = 0
        return tqdm(
            total=total,
            desc=desc,
            unit=unit,
            unit_scale=unit == "B",
            file=_Unterminated(self.stderr),
            ncols=columns or DEFAULT_COLUMNS,
            mininterval=0.1,
        )

    def parse(self, files) -> ImportReport:
        started = time.perf_counter()
        size = sum(f.stat().st_size for f in files)
        if self.live:
            with self._bar(total=size, desc="reading transcripts", unit="B") as bar:
                report = logs_import(files, progress=bar.update)
        else:
            report = logs_import(files)
        self.timings.append(
            f"read {len(files)} files ({size / 1e6:.1f} MB, {report.totals.requests} requests)"
            f" in {time.perf_counter() - started:.2f} s"
        )
        return report

    def store(self, report: ImportReport, user) -> tuple[int, int]:
        started = time.perf_counter()
        if self.live:
            with self._bar(total=report.totals.requests, desc="storing usage events", unit="event") as bar:
                stored = usage_events_store(report=report, user=user, progress=bar.update)
        else:
            stored = usage_events_store(report=report, user=user)
        self.timings.append(
            f"stored {stored[0]} new usage events ({stored[1]} already there) in {time.perf_counter() - started:.2f} s"
        )
        return stored

    def summary(self) -> None:
        if not self.live:
            self.stderr.write("import_claude_logs: " + "; ".join(self.timings))


class _Unterminated:
    """The command's stderr for tqdm, which writes partial lines (carriage-return updates)
    that OutputWrapper would otherwise end with a newline each."""

    def __init__(self, wrapper) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, ending="")

    def flush(self) -> None:
        self.wrapper.flush()
