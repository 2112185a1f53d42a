"""Verifying the usage relay's signature (docs/bridge-contract.md, "Bridge -> backend").

The bridge signs `timestamp + "." + nonce + "." + raw body` with its bridge token.
A request is accepted inside a 5-minute window of its timestamp, and each nonce
once: the nonce is remembered (in the shared cache, Redis in production) for
longer than the window, so a captured request cannot be replayed.
"""

import hashlib
import hmac
import time

from django.core.cache import cache

from mk0r.errors import ServiceError

WINDOW_SECONDS = 300
NONCE_MEMORY_SECONDS = 2 * WINDOW_SECONDS


class RelayUnauthorized(ServiceError):
    status_code = 401


class NonceReused(ServiceError):
    status_code = 409
    code = "nonce_reused"
    message = "This request was already received."


def relay_signature(*, key: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = f"{timestamp}.{nonce}.".encode() + body
    return "sha256=" + hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def relay_verify(*, headers, body: bytes, key: str, sandbox_id: str, now: float | None = None) -> None:
    timestamp = headers.get("X-Mk0r-Timestamp", "")
    nonce = headers.get("X-Mk0r-Nonce", "")
    signature = headers.get("X-Mk0r-Signature", "")
    if not (timestamp and nonce and signature):
        raise RelayUnauthorized("The request is not signed.", code="missing_signature")
    if not (8 <= len(nonce) <= 128):
        raise RelayUnauthorized("The nonce must be 8 to 128 characters.", code="bad_signature")
    try:
        age = (now if now is not None else time.time()) - int(timestamp)
    except ValueError:
        raise RelayUnauthorized("The timestamp is not a number.", code="bad_signature") from None
    if abs(age) > WINDOW_SECONDS:
        raise RelayUnauthorized("The timestamp is outside the 5-minute window.", code="stale_timestamp")
    expected = relay_signature(key=key, timestamp=timestamp, nonce=nonce, body=body)
    # As bytes: compare_digest refuses str with non-ASCII characters, which a header may carry.
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise RelayUnauthorized("The signature does not match.", code="bad_signature")
    # Only a correctly signed request may use up a nonce, so nobody else can burn them.
    if not cache.add(f"relay-nonce:{sandbox_id}:{nonce}", 1, timeout=NONCE_MEMORY_SECONDS):
        raise NonceReused()
