"""Shared fixtures: users on each plan with API clients, and a loopback bridge."""

import pytest
from rest_framework.test import APIClient

from billing.subscriptions.services import subscription_set
from tests.asgi_server import AsgiServer
from tests.bridge_double import BridgeDouble


@pytest.fixture(autouse=True)
def _fresh_catalog_cache():
    """Each test's transaction is rolled back: prices it created must not outlive it in the cache."""
    from billing.catalog.selectors import catalog_cache_clear

    catalog_cache_clear()
    yield
    catalog_cache_clear()


def _seed_reference_data() -> None:
    """What data migrations put in a fresh database (the price catalog, the cap defaults),
    loaded again through the migrations' own functions."""
    from importlib import import_module

    from django.apps import apps

    import_module("billing.migrations.0003_load_price_catalog").load(apps, None)
    import_module("billing.migrations.0007_cap_model_and_reports").seed(apps, None)


@pytest.fixture(autouse=True)
def _reference_data(request):
    """A transactional test flushes the database when it ends, data migrations' rows included;
    the next one that needs a database gets them back."""
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker is not None and marker.kwargs.get("transaction")) or any(
        name in request.fixturenames for name in ("transactional_db", "live_server", "asgi_live_server")
    )
    if transactional:
        request.getfixturevalue("transactional_db")
        from billing.models import PriceVersion

        if not PriceVersion.objects.exists():
            _seed_reference_data()


@pytest.fixture
def asgi_live_server(transactional_db):
    """The service on a real ASGI server (uvicorn, in this process), as chat turns are served."""
    server = AsgiServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bridge_double():
    double = BridgeDouble().start()
    yield double
    double.stop()


@pytest.fixture
def bridge(bridge_double, settings, tmp_path):
    """Every new session in the test attaches to the loopback bridge."""
    bridge_double.reset()
    settings.SANDBOX_PROVIDER = "static"
    settings.BRIDGE_STATIC_URL = bridge_double.url
    settings.BRIDGE_STATIC_TOKEN = bridge_double.token
    settings.LOCAL_SANDBOX_ROOT = tmp_path
    return bridge_double


def client_for(username: str, plan: str, *, status: str = "active", billing: str = "metered") -> APIClient:
    subscription, token = subscription_set(username=username, plan=plan, status=status, billing_mode=billing)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    client.user = subscription.user
    return client


@pytest.fixture
def free_client(db):
    return client_for("free-user", "free")


@pytest.fixture
def pro_client(db):
    return client_for("pro-user", "pro")


@pytest.fixture
def max20_client(db):
    return client_for("max20-user", "max20")


@pytest.fixture
def anon_client():
    return APIClient()
