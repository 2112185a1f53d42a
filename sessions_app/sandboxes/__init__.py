"""Sandbox providers: where a session's VM runs and how its bridge is reached."""

from django.conf import settings
from django.utils.module_loading import import_string

from .base import Sandbox, SandboxError, SandboxProvider

PROVIDERS = {
    "local": "sessions_app.sandboxes.local.LocalProvider",
    "e2b": "sessions_app.sandboxes.e2b.E2BProvider",
    "static": "sessions_app.sandboxes.static.StaticProvider",
}


def provider_for(name: str | None = None) -> SandboxProvider:
    name = name or settings.SANDBOX_PROVIDER
    try:
        return import_string(PROVIDERS[name])()
    except KeyError:
        raise SandboxError(f"Unknown sandbox provider {name!r}.", permanent=True) from None


__all__ = ["PROVIDERS", "Sandbox", "SandboxError", "SandboxProvider", "provider_for"]
