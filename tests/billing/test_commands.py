"""billing's management commands: every option says what it is, and bad input is a clear error
naming it (a CommandError, argparse's usage error from a shell), never a traceback."""

import json
from argparse import SUPPRESS
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command, load_command_class

from billing.models import PriceVersion

pytestmark = pytest.mark.django_db

COMMANDS = sorted(p.stem for p in (Path(__file__).parents[2] / "billing/management/commands").glob("[!_]*.py"))


@pytest.mark.parametrize("name", COMMANDS)
def test_every_argument_has_help(name):
    parser = load_command_class("billing", name).create_parser("manage.py", name)
    # Django's own options (--verbosity, --settings, ...) have theirs.
    missing = [a.dest for a in parser._actions if a.help in (None, "", SUPPRESS)]
    assert missing == []


QUOTE = ["quote", "--from", "haiku", "--to", "opus", "--prefix-tokens", "1000"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--idle", "nan"], "--idle"),
        (["--idle", "inf"], "--idle"),
        (["--idle", "-1"], "--idle"),
        (["--idle", "1e300"], "--idle"),
        (["--new-tokens", "-1"], "--new-tokens"),
        (["--new-tokens", "1.5"], "--new-tokens"),
        (["--to-prefix-tokens", "-5"], "--to-prefix-tokens"),
        (["--at", "2026-13-01T00:00"], "--at"),  # well formed, no such month
        (["--at", "2026-02-30"], "--at"),
        (["--at", "yesterday"], "--at"),
    ],
)
def test_quote_refuses_bad_input_by_name(args, named):
    with pytest.raises(CommandError, match=f"argument {named}: not an? "):
        call_command(*QUOTE, *args, stdout=StringIO())


def test_quote_takes_a_date_without_an_offset_as_utc():
    out = StringIO()
    call_command(*QUOTE, "--at", "2026-03-02T12:00", "--json", stdout=out)
    assert json.loads(out.getvalue())["priceVersion"]["from"] == "claude-haiku-4-5@2025-10-01"


@pytest.mark.parametrize("effective", ["2026-13-01T00:00", "soon"])
def test_import_litellm_prices_refuses_a_bad_effective_date(tmp_path, effective):
    path = tmp_path / "prices.json"
    path.write_text("{}")
    before = PriceVersion.objects.count()
    with pytest.raises(CommandError, match="argument --effective: not an ISO date-time"):
        call_command("import_litellm_prices", str(path), "--effective", effective, "--no-input", stdout=StringIO())
    assert PriceVersion.objects.count() == before


@pytest.mark.parametrize(
    ("username", "says"),
    [("", "cannot be blank"), ("u" * 151, "at most 150 characters"), ("bad user!", "Enter a valid username")],
)
def test_set_plan_refuses_a_username_the_admin_would_refuse(username, says):
    with pytest.raises(CommandError, match=says):
        call_command("set_plan", username, "pro", stdout=StringIO(), stderr=StringIO())
    assert not get_user_model().objects.exists()
