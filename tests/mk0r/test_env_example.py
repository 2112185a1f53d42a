"""`.env.example` lists every setting the service reads, in a form django-environ reads back."""

import re
from pathlib import Path

import environ

ROOT = Path(__file__).resolve().parents[2]
ENV_CALL = re.compile(r"""\benv(?:\.(?:bool|int|float|list|db|str))?\(\s*["']([A-Z0-9_]+)["']""")


def _read_by_code() -> set[str]:
    names = set()
    for path in (ROOT / "mk0r").rglob("*.py"):
        names |= set(ENV_CALL.findall(path.read_text()))
    return names


def _listed() -> set[str]:
    return set(re.findall(r"^(?:# )?([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))


def test_every_setting_is_listed():
    missing = _read_by_code() - _listed()
    assert not missing, f"settings missing from .env.example: {sorted(missing)}"


def test_copied_as_is_it_reads_back_clean(tmp_path, monkeypatch):
    dotenv = tmp_path / ".env"
    dotenv.write_text((ROOT / ".env.example").read_text())
    read: dict[str, str] = {}
    monkeypatch.setattr(environ.Env, "ENVIRON", read)  # read into a dict, not this process's environment
    environ.Env.read_env(str(dotenv))

    for name in _listed():
        value = read.get(name)
        # Unset (commented out) or a plain value: never a comment or blank swallowed into it.
        assert value is None or (value and "#" not in value and value == value.strip()), (name, value)
