"""The cache tracker's prediction on the real transcripts: how many eligible requests it
predicts within 1%, and why it misses the others.

    .venv/bin/python bench/tracker_accuracy.py [--write-docs]

The replay is the one `manage.py import_claude_logs ../shared/data/claude-code-logs` runs
(its `tracker` line gives the same figure), here against a PostgreSQL database of its own
(the catalog comes with the migrations). Each eligible request whose predicted read is off
by more than 1% is put under the first cause below that fits it, judged from its usage and
the previous request of its stream (a session's main chain, or one sub-agent conversation).
"""

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stack, transcripts  # noqa: E402
from bench.docs import write_section  # noqa: E402

stack.BENCH_DB = "mk0r_bench_tracker"
stack.DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{stack.BENCH_DB}"

# (name, what it is, whether the usage the service receives can tell it in advance)
CAUSES = (
    (
        "platform",
        "the request ran on the other platform (Anthropic API / Vertex AI) than the previous one, and"
        " read that platform's system prompt, cached by other sessions",
        "no: other sessions' requests are not this session's usage",
    ),
    (
        "model",
        "the model changed and the request read the new model's system prompt, cached by other sessions",
        "no: as above",
    ),
    (
        "reply_cached",
        "it read the previous request's prompt and reply, which a request outside the transcript had"
        " cached (seen where a short new message follows a finished turn)",
        "no: the transcript has neither that request nor where turns end",
    ),
    (
        "outside_write",
        "it read more than the conversation had cached, by an amount the usage does not explain"
        " (mostly the same, where the transcript cut the reply's output count short)",
        "no: as above",
    ),
    (
        "rewritten_shorter",
        "the prompt was shorter than what the previous request cached (compaction, /clear) and the read"
        " landed elsewhere than the fixed start the tracker knew",
        "no: where a rewritten prompt first differs is in its content",
    ),
    (
        "missed_whole",
        "nothing was read although the conversation was warm (the system prompt or the tools changed)",
        "no: as above",
    ),
    (
        "write_unused",
        "it read what the previous request read, not what that one wrote (the previous prompt's tail"
        " changed, or its write was not visible yet, which is likelier the sooner the request follows)",
        "no: the usage does not show which writes go unread",
    ),
    (
        "changed_inside",
        "it read an earlier breakpoint of the conversation than the tracker's (something inside the"
        " conversation changed: a cleared tool result, a rewritten reminder)",
        "no: where the prompt changed is in its content",
    ),
    (
        "resumed",
        "a resumed session's first request: the resumed prompt is rebuilt, not the copied history it follows",
        "no: as for a rewrite",
    ),
    (
        "other",
        "it read an entry the tracker no longer kept (evicted or expired)",
        "yes, keeping more entries, which costs more predictions than it wins (MAX_ENTRIES_PER_MODEL)",
    ),
)


def _platform(request_id: str) -> str:
    from billing.quotes.cache_tracker import request_platform

    return request_platform(request_id) or ""


def cause_of(r, previous) -> str:
    """The cause (a CAUSES name) of a missed prediction; `previous`: the stream's request before it."""
    if previous is None:
        return "resumed"
    usage, before = r.usage, previous.usage
    read, left = usage.cache_read_tokens, before.cache_read_tokens + before.cache_write_tokens
    platforms = _platform(r.request.request_id), _platform(previous.request.request_id)
    if all(platforms) and platforms[0] != platforms[1]:
        return "platform"
    if r.model != previous.model:
        return "model"
    if read > left:
        # The previous prompt and its reply: a couple of tokens of the reply's end are not cached.
        reply = before.input_tokens + before.output_tokens
        return "reply_cached" if 0 <= reply - (read - left) <= 10 else "outside_write"
    if usage.total_input_tokens < left:
        return "rewritten_shorter"
    if read == 0:
        return "missed_whole"
    if read == before.cache_read_tokens:
        return "write_unused"
    if read < r.predicted_read:
        return "changed_inside"
    return "other"


def measure() -> tuple[object, Counter]:
    from billing.usage.cache_health import prediction_within_tolerance
    from billing.usage.transcript_import import logs_import

    report = logs_import([transcripts.LOGS])
    causes: Counter = Counter()
    for session in report.sessions:
        last: dict[str, object] = {}
        for r in session.requests:
            stream = r.request.thread if r.request.is_sidechain else ""
            if r.eligible and not prediction_within_tolerance(
                predicted=r.predicted_read, actual=r.usage.cache_read_tokens
            ):
                causes[cause_of(r, last.get(stream))] += 1
            last[stream] = r
    return report.totals, causes


def section(totals, causes: Counter) -> str:
    missed = totals.eligible - totals.within_tolerance
    share = totals.within_tolerance / totals.eligible
    rows = "\n".join(f"| {what} | {causes[name]:,} | {known} |" for name, what, known in CAUSES)
    assert sum(causes.values()) == missed
    return f"""The cache tracker's expected cache read against the one Anthropic reported, on every
transcript in ../shared/data/claude-code-logs ({totals.requests:,} requests, main chains and sub-agents):
**within 1% on {totals.within_tolerance:,} of {totals.eligible:,} eligible requests ({share:.2%})**, exactly
on {totals.exact:,}. The same figure is the `tracker` line of
`manage.py import_claude_logs ../shared/data/claude-code-logs`.

Eligible (DESIGN.md §7, `billing.usage.cache_health.cache_request_eligible`): not the first
request of its stream (a session's main chain, or one sub-agent conversation), a prompt at least
the model's minimum cacheable length, and at most the stream's write TTL after the stream's
previous request. Within 1%: |expected - actual| ≤ 1% of the actual read (an actual read of 0
needs an expected 0). The tracker knows what the service knows: each request's usage, model,
start time, stream and request id. It keeps entries per platform (the request id names Anthropic's
API or Vertex AI) and per model, and each model's fixed start (the system prompt and tools), which
a rewritten prompt falls back to.

The {missed:,} misses by cause, each request under the first that fits (`bench/tracker_accuracy.py`):

| cause | requests | predictable from the service's usage? |
|---|---|---|
{rows}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    if not transcripts.LOGS.is_dir():
        raise SystemExit(f"no transcripts at {transcripts.LOGS}")
    stack.fresh_database()
    try:
        os.environ["DJANGO_SETTINGS_MODULE"] = "mk0r.settings.base"
        os.environ["DATABASE_URL"] = stack.DATABASE_URL
        import django

        django.setup()
        text = section(*measure())
    finally:
        from django.db import connections

        connections.close_all()
        stack.drop_database()
    print(text)
    if args.write_docs:
        write_section("Cache tracker accuracy", text)


if __name__ == "__main__":
    main()
