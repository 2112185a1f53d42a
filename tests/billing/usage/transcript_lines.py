"""Claude Code transcript lines written by the tests, as the agent writes them, and the import
command run on them."""

import io
import json
from datetime import UTC, datetime, timedelta

from django.core.management import call_command

T0 = datetime(2026, 3, 12, 0, 6, 0, tzinfo=UTC)
HAIKU = "claude-haiku-4-5-20251001"
SONNET = "claude-sonnet-4-6"
SID = "8b0db7b7-d213-4a9a-899e-554aaca9f294"


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def assistant(
    rid, *, at, session=SID, model=HAIKU, inp=3, w5=0, w1=0, read=0, out=1, sidechain=False, mid=None, **links
):
    usage = {
        "input_tokens": inp,
        "cache_creation_input_tokens": w5 + w1,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1},
        "output_tokens": out,
        "service_tier": "standard",
    }
    line = {
        "type": "assistant",
        "timestamp": iso(at),
        "sessionId": session,
        "requestId": rid,
        "isSidechain": sidechain,
        "message": {"id": mid or f"msg_{rid}", "model": model, "usage": usage},
        **links,
    }
    if rid is None:
        del line["requestId"]
    return line


def user(at, *, sidechain=False, **links):
    return {"type": "user", "timestamp": iso(at), "isSidechain": sidechain, **links}


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def s(n):
    return timedelta(seconds=n)


def chat(tmp_path, name=SID):
    """Three requests on Haiku (the first split over three lines), then one on Sonnet."""
    return write(
        tmp_path / "projects" / "demo" / f"{name}.jsonl",
        [
            user(T0),
            assistant("req_1", at=T0 + s(2), w1=20_000, out=1),
            assistant("req_1", at=T0 + s(3), w1=20_000, out=1),
            assistant("req_1", at=T0 + s(4), w1=20_000, out=640),
            user(T0 + s(10)),
            assistant("req_2", at=T0 + s(12), w1=900, read=20_000, out=200),
            assistant(None, at=T0 + s(13), model="<synthetic>", out=0),
            assistant("req_3", at=T0 + s(30), w1=700, read=20_900, out=300),
            assistant("req_4", at=T0 + s(60), model=SONNET, w1=22_100, out=100),
        ],
    )


def import_command(*args) -> str:
    out = io.StringIO()
    call_command("import_claude_logs", *map(str, args), stdout=out)
    return out.getvalue()
