"""The E2B provider against an autospec of the SDK's Sandbox: nothing leaves the machine."""

from unittest import mock

import pytest
from e2b import Sandbox as RealSandbox
from e2b.exceptions import AuthenticationException, NotFoundException, RateLimitException, SandboxException

from sessions_app.sandboxes import SandboxError, provider_for
from sessions_app.sandboxes.e2b import TRAFFIC_TOKEN_HEADER


@pytest.fixture
def e2b(settings):
    settings.E2B_API_KEY = "e2b_test_key"
    settings.E2B_TEMPLATE = "mk0r-session"
    settings.PUBLIC_BASE_URL = "https://api.example.test"
    with (
        mock.patch("sessions_app.sandboxes.e2b.E2BSandbox", autospec=True) as sandbox_cls,
        mock.patch("sessions_app.sandboxes.e2b.wait_for_bridge", autospec=True) as wait,
    ):
        instance = mock.create_autospec(RealSandbox, instance=True)
        instance.sandbox_id = "sbx_123"
        instance.traffic_access_token = "traffic-tok"
        instance.get_host.return_value = "3002-sbx_123.e2b.app"
        sandbox_cls.create.return_value = instance
        yield sandbox_cls, instance, wait


def test_start_creates_from_the_template_and_starts_the_bridge(e2b):
    sandbox_cls, instance, wait = e2b

    sandbox = provider_for("e2b").start(session_key="key-1", user_id=7)

    create = sandbox_cls.create.call_args.kwargs
    assert create["template"] == "mk0r-session"
    assert create["metadata"] == {"sessionKey": "key-1", "userId": "7"}
    assert create["network"] == {"allow_public_traffic": False}
    assert create["api_key"] == "e2b_test_key"
    run = instance.commands.run.call_args
    assert run.kwargs["background"] is True and run.kwargs["timeout"] == 0
    envs = run.kwargs["envs"]
    assert envs["BRIDGE_TOKEN"] == sandbox.bridge_token and len(sandbox.bridge_token) >= 32
    assert envs["MK0R_USAGE_URL"] == "https://api.example.test/api/internal/usage"
    assert envs["MK0R_SANDBOX_ID"] == "sbx_123"
    instance.get_host.assert_called_once_with(3002)
    assert sandbox.bridge_url == "https://3002-sbx_123.e2b.app"
    assert sandbox.access_token == "traffic-tok"
    assert wait.call_args.kwargs["headers"] == {TRAFFIC_TOKEN_HEADER: "traffic-tok"}


def test_two_sandboxes_never_share_a_bridge_token(e2b):
    provider = provider_for("e2b")
    assert (
        provider.start(session_key="a", user_id=1).bridge_token
        != provider.start(session_key="b", user_id=1).bridge_token
    )


@pytest.mark.parametrize(
    ("exc", "permanent"),
    [
        (RateLimitException("slow down"), False),
        (AuthenticationException("bad key"), True),
        (SandboxException("boom"), False),
    ],
)
def test_create_errors_are_mapped(e2b, exc, permanent):
    sandbox_cls, _, _ = e2b
    sandbox_cls.create.side_effect = exc
    with pytest.raises(SandboxError) as info:
        provider_for("e2b").start(session_key="k", user_id=1)
    assert info.value.permanent is permanent


def test_bridge_that_never_comes_up_kills_the_sandbox(e2b):
    sandbox_cls, _, wait = e2b
    wait.side_effect = SandboxError("no health", permanent=False)
    with pytest.raises(SandboxError):
        provider_for("e2b").start(session_key="k", user_id=1)
    sandbox_cls.kill.assert_called_once_with("sbx_123", api_key="e2b_test_key")


def test_stop_kills_and_tolerates_a_gone_sandbox(e2b):
    sandbox_cls, _, _ = e2b
    provider = provider_for("e2b")
    provider.stop(sandbox_id="sbx_123")
    sandbox_cls.kill.assert_called_once_with("sbx_123", api_key="e2b_test_key")
    sandbox_cls.kill.side_effect = NotFoundException("gone")
    provider.stop(sandbox_id="sbx_123")


def test_missing_api_key_is_a_permanent_error(settings):
    settings.E2B_API_KEY = ""
    with pytest.raises(SandboxError) as info:
        provider_for("e2b").start(session_key="k", user_id=1)
    assert info.value.permanent


@pytest.mark.django_db
def test_session_create_with_e2b_down_is_503(pro_client, settings, e2b):
    settings.SANDBOX_PROVIDER = "e2b"
    e2b[0].create.side_effect = RateLimitException("slow down")
    response = pro_client.post("/api/chat/sessions", format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "sandbox_unavailable"
    assert response.json()["extra"]["retryable"] is True


def _info(state: str):
    from e2b import SandboxState

    return mock.Mock(state=SandboxState(state))


def test_exists_asks_e2b_for_the_sandbox(e2b):
    sandbox_cls, _, _ = e2b
    sandbox_cls.get_info.return_value = _info("running")

    assert provider_for("e2b").exists(sandbox_id="sbx_123") is True
    sandbox_cls.get_info.assert_called_once_with("sbx_123", api_key="e2b_test_key")


@pytest.mark.parametrize(
    ("answer", "exists"),
    [
        (NotFoundException("Sandbox sbx_123 not found"), False),  # killed, or timed out
        (None, False),  # paused: its bridge does not answer, and nothing here resumes it
    ],
)
def test_a_sandbox_that_is_not_running_does_not_exist(e2b, answer, exists):
    sandbox_cls, _, _ = e2b
    if answer is None:
        sandbox_cls.get_info.return_value = _info("paused")
    else:
        sandbox_cls.get_info.side_effect = answer

    assert provider_for("e2b").exists(sandbox_id="sbx_123") is exists


@pytest.mark.parametrize("failure", [SandboxException("502: bad gateway"), AuthenticationException("bad key")])
def test_exists_says_when_it_cannot_tell(e2b, failure):
    sandbox_cls, _, _ = e2b
    sandbox_cls.get_info.side_effect = failure

    with pytest.raises(SandboxError, match="look the sandbox up"):
        provider_for("e2b").exists(sandbox_id="sbx_123")
