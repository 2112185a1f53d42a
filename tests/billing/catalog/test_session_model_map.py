"""Pricing a picker id through a session's own map, the catalog's aliases as the fallback."""

from datetime import UTC, datetime

import pytest

from billing.catalog.selectors import model_priced, model_resolve, session_api_models

pytestmark = pytest.mark.django_db
AT = datetime(2026, 11, 26, tzinfo=UTC)


def test_the_session_map_wins_over_the_alias_table():
    session_map = {"haiku": "claude-haiku-5-5", "sonnet": "claude-sonnet-5-5"}

    priced = model_priced(model_id="haiku", at=AT, session_map=session_map)

    assert priced.resolved.api_id == "claude-haiku-5-5" and priced.resolved.alias == "haiku"
    assert priced.version.api_model.api_id == "claude-haiku-5-5"
    assert model_resolve(model_id="sonnet[1m]", at=AT, session_map={"sonnet[1m]": "claude-sonnet-5-5"}).long_context


def test_ids_the_map_does_not_name_fall_back_to_the_catalog():
    session_map = {"haiku": "claude-haiku-5-5"}
    assert model_priced(model_id="opus", at=AT, session_map=session_map) == model_priced(model_id="opus", at=AT)
    # A model the catalog cannot price yet does not break the quote: the alias table answers.
    assert model_priced(model_id="opus", at=AT, session_map={"opus": "claude-gizmo-9"}).resolved.alias == "opus"


def test_session_api_models_reads_the_stored_shape():
    stored = {
        "haiku": {"apiModel": "claude-haiku-5-5", "source": "usage", "at": "2026-11-26T08:00:00Z"},
        "broken": {"source": "offer"},
    }
    assert session_api_models(stored) == {"haiku": "claude-haiku-5-5"}
    assert session_api_models(None) == {}
