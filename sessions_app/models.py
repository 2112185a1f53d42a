import uuid

from django.conf import settings
from django.db import models


class SessionStatus(models.TextChoices):
    STARTING = "starting", "Starting"
    READY = "ready", "Ready"
    CLOSED = "closed", "Closed"
    FAILED = "failed", "Failed"
    # The sandbox stopped under a ready session (a restarted machine, an expired VM): nothing can
    # bring it back, the user starts a new session.
    SANDBOX_GONE = "sandbox_gone", "Sandbox gone"


class CacheTtl(models.TextChoices):
    # Claude Code on an API key writes 5-minute cache entries; on a subscription, 1-hour ones.
    FIVE_MINUTES = "5m", "5 minutes"
    ONE_HOUR = "1h", "1 hour"


class AgentSession(models.Model):
    """One app's agent session: a sandbox VM, the bridge in it, and one ACP session."""

    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_sessions")
    status = models.CharField(max_length=16, choices=SessionStatus.choices, default=SessionStatus.STARTING)
    provider = models.CharField(max_length=16)
    sandbox_id = models.CharField(max_length=128, blank=True, db_index=True)
    bridge_url = models.URLField(max_length=512, blank=True)
    # A secret: authenticates us to the bridge and signs its usage relay. Never serialized or logged.
    bridge_token = models.CharField(max_length=128, blank=True)
    # E2B's traffic access token for the sandbox's public host; a secret like the bridge token.
    sandbox_access_token = models.CharField(max_length=256, blank=True)
    acp_session_id = models.CharField(max_length=128, blank=True)
    # The ACP sessions a resume replaced, newest last: their usage may still be on its way.
    earlier_acp_session_ids = models.JSONField(default=list, blank=True)
    model_id = models.CharField(max_length=32)
    # Set while the stored model is in doubt (a switch whose outcome is unknown, or one in
    # flight): the next quote, switch, turn or resume asks the agent first (model_truth.py).
    model_unverified = models.BooleanField(default=False)
    # What the session's own agent says each picker id means: {picker id: {"apiModel",
    # "source": "offer" (session/new's descriptions) | "usage" (the billed model), "at"}}.
    model_map = models.JSONField(default=dict, blank=True)
    # What the agent offered when its ACP session was opened ([{modelId, name, description}]),
    # so that reading the session later lists the same models.
    available_models = models.JSONField(default=list, blank=True)
    cwd = models.CharField(max_length=512, blank=True)
    cache_ttl = models.CharField(max_length=2, choices=CacheTtl.choices, default=CacheTtl.FIVE_MINUTES)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Held by the one request talking to the agent about the session's model (a switch or a
    # resume) for the length of its bridge call, instead of a row lock in a transaction left
    # open across that call. It expires on its own should its holder die (sessions_app/leases.py).
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.key} ({self.user}, {self.model_id}, {self.status})"

    def __repr__(self) -> str:
        # Keep the bridge token out of tracebacks and debug output.
        return f"<AgentSession {self.key} user={self.user_id} model={self.model_id} status={self.status}>"


class ChatTurn(models.Model):
    """One chat turn of a session as its user saw it: the prompt, the agent's text, how it ended.

    Written once, when the turn ends (done, error, or its client gone), by the relay; what it
    cost is read from its usage (billing.usage.turn_costs), the `done` usage's price standing in
    until the relayed usage is in."""

    # How a turn ended besides the agent's own stopReason (`end_turn`, `cancelled`, ...).
    ERROR = "error"
    DISCONNECTED = "disconnected"  # the client went away before the turn's end reached it

    session = models.ForeignKey(AgentSession, on_delete=models.CASCADE, related_name="turns")
    # The bridge numbers the turns of each ACP session; its usage records carry the same number.
    acp_session_id = models.CharField(max_length=128)
    number = models.PositiveIntegerField(null=True, blank=True)
    model_id = models.CharField(max_length=32)
    prompt = models.TextField()
    text = models.TextField(blank=True)
    text_truncated = models.BooleanField(default=False)
    stop_reason = models.CharField(max_length=32)
    error_code = models.CharField(max_length=64, blank=True)
    # The `done` event's ACP usage (the agent's sum over the turn's requests), if it came.
    usage = models.JSONField(null=True, blank=True)
    provisional_cost_usd = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    provisional_price_version = models.ForeignKey(
        "billing.PriceVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["session", "-id"])]

    def __str__(self) -> str:
        return f"turn {self.number or '?'} of {self.session_id} ({self.stop_reason})"
