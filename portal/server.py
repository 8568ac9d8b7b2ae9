"""Running the portal: uvicorn with its access log off and a redacted access log of our own.

Link tokens travel in the URL path, so uvicorn's access log (which prints the raw path) is
disabled; `RedactedAccessLog` logs each request with `/c/<token>` replaced by a short,
non-reversible digest of the token. `duban portal` keeps that log off unless asked
(`--access-log`): under load a line per request is CPU better spent on answers.

`X-Forwarded-For` is believed only from the addresses in `DUBAN_TRUSTED_PROXIES` (IPs or
CIDR ranges, comma-separated; empty by default, so no forwarding header is trusted, not
even from loopback). With `workers > 1` uvicorn runs that many processes; their rate
limits are counted together in `<data dir>/portal-limits.db` (`SharedRateLimiter`).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
from dataclasses import asdict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.errors import DubanError
from models.settings import Settings
from notifications.links import token_digest
from portal.security import Limiter, RateLimiter, RateLimits

access_logger = logging.getLogger("duban.portal.access")
# Every one-letter route carries a signed token in its second segment (form, department page,
# download, instruction): all of them are redacted, so a new link kind cannot leak by omission.
_TOKEN_PATH = re.compile(r"^/([a-z])/([^/?#]+)")
# How `serve` passes its options to worker processes (uvicorn re-imports the app factory).
WORKER_OPTIONS_ENV = "DUBAN_PORTAL_WORKER_OPTIONS"
LIMITS_FILE = "portal-limits.db"
WORKER_HEALTHCHECK_SECONDS = 60
LOG_FORMAT = "%(asctime)s %(name)s %(message)s"


def redact_path(path: str) -> str:
    """`/c/<token>` (form), `/d/<token>` (department page), `/f/<token>` (download) and
    `/i/<token>` (instruction) become `/c/~<digest>` and so on; other paths are returned as
    they are."""
    return _TOKEN_PATH.sub(lambda match: f"/{match.group(1)}/~{token_digest(match.group(2))}", path)


class RedactedAccessLog:
    """ASGI middleware: one access-log line per HTTP request, never containing a token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through, then log method, redacted path and status."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        if not access_logger.isEnabledFor(logging.INFO):  # off: no redaction, no record
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, record)
        finally:
            client = scope.get("client") or ("-", 0)
            access_logger.info(
                "%s %s %s %d", client[0], scope["method"], redact_path(scope["path"]), status
            )


def trusted_proxies(settings: Settings) -> list[str]:
    """The proxy addresses from `DUBAN_TRUSTED_PROXIES`; `DubanError` on a bad entry.

    Each entry is an IP address or a CIDR range; `*` (trust everyone) is refused, since any
    client could then choose the address its requests are counted under.
    """
    entries = [entry.strip() for entry in settings.trusted_proxies.split(",") if entry.strip()]
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise DubanError(
                f"配置错误：DUBAN_TRUSTED_PROXIES 中的“{entry}”不是 IP 地址或网段"
                "（如 10.0.0.5 或 10.0.0.0/24，多个用逗号分隔）。"
            ) from None
    return entries


def behind_proxies(app: ASGIApp, settings: Settings) -> ASGIApp:
    """`app` reading the client address from `X-Forwarded-For` only for trusted proxies."""
    proxies = trusted_proxies(settings)
    if not proxies:
        return app
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    wrapped: Any = ProxyHeadersMiddleware(app, trusted_hosts=proxies)  # type: ignore[arg-type]
    return wrapped  # type: ignore[no-any-return]


def uvicorn_options(
    settings: Settings, *, host: str | None, port: int | None, workers: int = 1
) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run`: access log and server header off, and no
    forwarding headers (`behind_proxies` applies `DUBAN_TRUSTED_PROXIES` itself).
    """
    options: dict[str, Any] = {
        "host": host or settings.portal_host,
        "port": port or settings.portal_port,
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
        "log_level": "info",
    }
    if workers > 1:
        options["workers"] = workers
        # a worker answers the supervisor's health check only once it has imported its
        # code; on a busy machine that takes longer than uvicorn's 5 s, and a worker
        # thought dead is restarted, again and again
        options["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_SECONDS
    return options


def build_app(
    settings: Settings, *, limits: RateLimits | None = None, limiter: Limiter | None = None
) -> ASGIApp:
    """The production ASGI app: the portal over the configured store, behind the access log."""
    from portal.app import create_app
    from tasks.store import open_store

    store = open_store(settings)
    app = create_app(settings, store.sessions, limits=limits, limiter=limiter)
    return RedactedAccessLog(behind_proxies(app, settings))


def worker_app() -> ASGIApp:
    """uvicorn's app factory in each worker process: options from `WORKER_OPTIONS_ENV`."""
    from models.settings import get_settings

    settings = get_settings()
    options = json.loads(os.environ.get(WORKER_OPTIONS_ENV, "{}"))
    configure_access_log(enabled=bool(options.get("access_log")), worker=True)
    limits = RateLimits(**options.get("limits", {}))
    limiter = shared_limiter(settings) if options.get("shared") else RateLimiter()
    return build_app(settings, limits=limits, limiter=limiter)


def shared_limiter(settings: Settings) -> Limiter:
    """The rate-limit store all worker processes of this data directory share."""
    from portal.security import SharedRateLimiter

    return SharedRateLimiter(settings.data_dir / LIMITS_FILE)


def configure_access_log(*, enabled: bool, worker: bool = False) -> None:
    """The redacted access log (one line per request, to stderr) only when `enabled`
    (`duban portal --access-log`), else it costs nothing per request. The main process
    logs at INFO; a worker process configures logging only for its access log."""
    if enabled or not worker:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    access_logger.setLevel(logging.INFO if enabled else logging.WARNING)


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int = 1,
    limits: RateLimits | None = None,
    access_log: bool = False,
) -> None:
    """Run the portal with uvicorn until interrupted (blocks).

    One process by default; `workers > 1` starts that many uvicorn worker processes that
    count rate limits together. The access log is off unless `access_log`. Fails before
    listening on a bad `DUBAN_TRUSTED_PROXIES`.
    """
    import uvicorn

    trusted_proxies(settings)
    limits = limits or RateLimits()
    configure_access_log(enabled=access_log)
    options = uvicorn_options(settings, host=host, port=port, workers=workers)
    if workers <= 1:
        uvicorn.run(build_app(settings, limits=limits), **options)
        return
    os.environ[WORKER_OPTIONS_ENV] = json.dumps(
        {"limits": asdict(limits), "shared": True, "access_log": access_log}
    )
    uvicorn.run("portal.server:worker_app", factory=True, **options)
