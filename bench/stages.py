"""Where a request's time goes inside gunicorn: a service started with bench/timed_gunicorn.conf.py
clocks each stage of every request, and these helpers turn the clocks into a table of medians."""

import contextlib
import json
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench import stack

# Stage names as bench/timed_gunicorn.conf.py records them.
WHOLE = "client: the whole call"
GUNICORN = "gunicorn: request read, app, answer written"
DJANGO = "django: the WSGI app"
DRF = "drf: auth, permissions, rate limit"
AUTH = "token auth (1 PostgreSQL statement)"
RATE_LIMIT = "rate limit (1 Redis script)"

# (label, stage, the stages inside it), outermost first; a row shows the stage's own time. The
# client's row (stage None) is the whole call less gunicorn's handling of it.
FRAME = (
    ("client, loopback, gunicorn handing the connection to a thread", None, ()),
    ("gunicorn: reading the request, writing the answer", GUNICORN, (DJANGO,)),
)
DRF_ROWS = (
    (AUTH, AUTH, ()),
    (RATE_LIMIT, RATE_LIMIT, ()),
    ("DRF: the rest of authentication and permissions", DRF, (AUTH, RATE_LIMIT)),
)


@contextlib.contextmanager
def timed_service(*, bridge_url: str, path: str, into: dict[str, float]) -> Iterator[str]:
    """A service whose workers clock each stage; on exit, `into` gets the median of each stage
    of the requests to `path` (the first 20 of them left out as warm-up)."""
    with tempfile.TemporaryDirectory() as directory:
        timed = (stack.GTHREAD[0], "bench/timed_gunicorn.conf.py")
        with stack.service(bridge_url=bridge_url, server=timed, STAGES_DIR=directory) as url:
            yield url
        # The workers have exited and written their clocks.
        times: dict[str, list[float]] = {}
        for worker_file in Path(directory).glob("*.json"):
            for stage, values in json.loads(worker_file.read_text()).get(path, {}).items():
                times.setdefault(stage, []).extend(values[20:])
        into.update({stage: statistics.median(values) for stage, values in times.items()})


def table(stages: dict[str, float], rows: tuple) -> str:
    lines = ["| stage | p50 |", "|---|---|", f"| **the whole call, as the client sees it** | {stages[WHOLE]:.2f} ms |"]
    for label, stage, inner in rows:
        own = stages[WHOLE] - stages[GUNICORN] if stage is None else stages[stage] - sum(stages[i] for i in inner)
        lines.append(f"| {label} | {own:.2f} ms |")
    return "\n".join(lines)
