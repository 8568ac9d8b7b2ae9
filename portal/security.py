"""Portal request security: CSRF tokens bound to a link, and in-memory rate limits.

CSRF is a signed double submit: the GET sets a random nonce in an HttpOnly, SameSite=Strict
cookie, and the form carries `HMAC(secret, link digest, nonce)`. A POST is accepted only if
the field matches the cookie's nonce for the same link, so a form from another site or for
another link is refused.

Rate limits are sliding windows kept in this process's memory, keyed by the token digest
and by the client address; several portal processes each keep their own counts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from models.settings import Settings

CSRF_COOKIE = "duban_csrf"
CSRF_FIELD = "csrf_token"


def new_nonce() -> str:
    """A fresh random CSRF nonce for the cookie."""
    return secrets.token_urlsafe(18)


def csrf_token(*, settings: Settings, link_digest: str, nonce: str) -> str:
    """The form's CSRF value for one link and one cookie nonce."""
    key = settings.secret_key.get_secret_value().encode()
    message = f"duban.csrf.v1|{link_digest}|{nonce}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def csrf_valid(*, settings: Settings, link_digest: str, nonce: str | None, value: str) -> bool:
    """True if `value` is the CSRF token for this link and the cookie's `nonce`."""
    if not nonce or not value or len(nonce) > 64 or len(value) > 128:
        return False
    expected = csrf_token(settings=settings, link_digest=link_digest, nonce=nonce)
    return hmac.compare_digest(expected, value)


@dataclass(frozen=True)
class RateLimits:
    """Requests allowed per `window_seconds`, per link token and per client address."""

    window_seconds: float = 60.0
    per_token_get: int = 30
    per_token_post: int = 10
    per_address: int = 120


@dataclass
class RateLimiter:
    """A thread-safe sliding-window counter per key; `clock` is injectable for tests."""

    clock: Callable[[], float] = time.monotonic
    max_keys: int = 100_000
    _hits: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, key: str, *, limit: int, window: float) -> bool:
        """Count one request for `key` and say whether it is within `limit` per `window`."""
        now = self.clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.max_keys:
                    self._evict(now, window)
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                return False
            hits.append(now)
            return True

    def _evict(self, now: float, window: float) -> None:
        stale = [key for key, hits in self._hits.items() if not hits or hits[-1] <= now - window]
        for key in stale:
            del self._hits[key]
        if len(self._hits) >= self.max_keys:
            self._hits.clear()
