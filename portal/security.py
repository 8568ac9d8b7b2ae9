"""Portal request security: CSRF tokens bound to a link, and in-memory rate limits.

CSRF is a signed double submit: the GET sets a random nonce in an HttpOnly, SameSite=Strict
cookie, and the form carries `HMAC(secret, link digest, nonce)`. A POST is accepted only if
the field matches the cookie's nonce for the same link, so a form from another site or for
another link is refused.

Rate limits are sliding windows keyed by the verified link claims (per link and method)
and by the client address. The per-link limits bound abuse; the per-address count is a
generous backstop (many departments share one NAT address) with a stricter budget for
links that fail to verify, which bounds guessing. `RateLimiter` counts in this process's
memory; `SharedRateLimiter` counts in a SQLite file so that several worker processes on
one machine share one count.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from starlette.requests import Request

from models.settings import Settings

CSRF_COOKIE = "duban_csrf"
CSRF_FIELD = "csrf_token"


def client_address(request: Request) -> str:
    """The address a per-address limit counts: the peer, or the client a trusted proxy named
    (`portal.server.behind_proxies` rewrites the peer before any route sees it)."""
    return request.client.host if request.client else "unknown"


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


DEFAULT_PER_ADDRESS = 6000


@dataclass(frozen=True)
class RateLimits:
    """Requests allowed per `window_seconds`: per link (its verified claims) and method, per
    client address (a backstop), and failed links per client address.
    """

    window_seconds: float = 60.0
    per_token_get: int = 30
    per_token_post: int = 10
    per_address: int = DEFAULT_PER_ADDRESS
    per_address_invalid: int = 60


class Limiter(Protocol):
    """Counts requests per key; `allow` records one and says if it is within the limit."""

    def allow(self, key: str, *, limit: int, window: float) -> bool:
        """Count one request for `key`; False (not counted) when `limit` per `window` is hit."""
        ...

    def allow_each(self, checks: Sequence[tuple[str, int]], *, window: float) -> bool:
        """`allow` for each `(key, limit)` in order, stopping at the first refused one (the
        keys before it stay counted); True if all were allowed."""
        ...


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

    def allow_each(self, checks: Sequence[tuple[str, int]], *, window: float) -> bool:
        """See `Limiter.allow_each`."""
        return all(self.allow(key, limit=limit, window=window) for key, limit in checks)

    def _evict(self, now: float, window: float) -> None:
        stale = [key for key, hits in self._hits.items() if not hits or hits[-1] <= now - window]
        for key in stale:
            del self._hits[key]
        if len(self._hits) >= self.max_keys:
            self._hits.clear()


_SCHEMA = """
create table if not exists counts (
    key text not null, bucket real not null, n integer not null, primary key (key, bucket)
) without rowid;
create index if not exists counts_bucket on counts (bucket);
"""
BUCKETS_PER_WINDOW = 60
LOCK_TIMEOUT_SECONDS = 30.0


class SharedRateLimiter:
    """Sliding-window counts in one SQLite file, shared by every process that opens it.

    Hits are counted in buckets of `window / 60` (one second for the usual minute): each
    `allow` is one short write transaction (`BEGIN IMMEDIATE`) that sums the key's buckets
    overlapping the window (at most 61 rows, whatever the limit) and adds one to the current
    bucket if allowed. A bucket counts while any part of it is inside the window, so a hit
    is forgotten at most one bucket later than an exact sliding window would (never
    earlier): the limits are never exceeded. Buckets older than the longest window seen
    are deleted every `prune_every` calls. The clock must be wall time (`time.time`), the
    same in every process. The file holds only keys (client addresses and check-in ids),
    never tokens; losing it only resets the counts.
    """

    def __init__(
        self, path: Path, *, clock: Callable[[], float] = time.time, prune_every: int = 1000
    ) -> None:
        self.path = path
        self.clock = clock
        self.prune_every = prune_every
        self._local = threading.local()
        self._calls = 0
        self._window = 0.0
        path.parent.mkdir(parents=True, exist_ok=True)
        setup = sqlite3.connect(path, timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None)
        try:
            setup.execute("PRAGMA journal_mode=WAL")
            setup.execute("drop table if exists hits")  # the per-hit rows of before
            setup.executescript(_SCHEMA)
        finally:
            setup.close()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")
        # then no SQLite busy handler (it sleeps 1, 2, 5, 10… ms, on the event loop's
        # thread): `allow_each` retries a taken lock every 0.2 ms instead
        connection.execute("PRAGMA busy_timeout=0")
        return connection

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        return connection

    def allow(self, key: str, *, limit: int, window: float) -> bool:
        """Count one request for `key` across processes; see `Limiter.allow`."""
        return self.allow_each([(key, limit)], window=window)

    def allow_each(self, checks: Sequence[tuple[str, int]], *, window: float) -> bool:
        """See `Limiter.allow_each`: all checks in one write transaction, retried every
        0.2 ms while another process holds the lock (up to `LOCK_TIMEOUT_SECONDS`)."""
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        while True:
            try:
                return self._count(checks, window=window)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.0002)

    def _count(self, checks: Sequence[tuple[str, int]], *, window: float) -> bool:
        now = self.clock()
        step = window / BUCKETS_PER_WINDOW
        bucket = (now // step) * step
        connection = self._connection()
        self._calls += 1
        self._window = max(self._window, window + step)
        connection.execute("BEGIN IMMEDIATE")
        try:
            allowed = True
            for key, limit in checks:
                (count,) = connection.execute(
                    "select coalesce(sum(n), 0) from counts where key = ? and bucket > ?",
                    (key, now - window - step),
                ).fetchone()
                if count >= limit:
                    allowed = False
                    break
                connection.execute(
                    "insert into counts (key, bucket, n) values (?, ?, 1) "
                    "on conflict (key, bucket) do update set n = n + 1",
                    (key, bucket),
                )
            if self._calls % self.prune_every == 0:
                connection.execute("delete from counts where bucket <= ?", (now - self._window,))
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return allowed
