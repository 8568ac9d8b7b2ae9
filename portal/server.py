"""Running the portal: uvicorn with its access log off and a redacted access log of our own.

Link tokens travel in the URL path, so uvicorn's access log (which prints the raw path) is
disabled; `RedactedAccessLog` logs each request with `/c/<token>` replaced by a short,
non-reversible digest of the token.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.settings import Settings
from notifications.links import token_digest

access_logger = logging.getLogger("duban.portal.access")
_TOKEN_PATH = re.compile(r"^/c/([^/?#]+)")


def redact_path(path: str) -> str:
    """`/c/<token>` becomes `/c/~<digest>`; other paths are returned as they are."""
    return _TOKEN_PATH.sub(lambda match: f"/c/~{token_digest(match.group(1))}", path)


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

        try:
            await self.app(scope, receive, record)
        finally:
            client = scope.get("client") or ("-", 0)
            access_logger.info(
                "%s %s %s %d", client[0], scope["method"], redact_path(scope["path"]), status
            )


def uvicorn_options(settings: Settings, *, host: str | None, port: int | None) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run`: access log off, server header off."""
    return {
        "host": host or settings.portal_host,
        "port": port or settings.portal_port,
        "access_log": False,
        "server_header": False,
        "proxy_headers": True,
        "forwarded_allow_ips": "127.0.0.1",
        "log_level": "info",
    }


def build_app(settings: Settings) -> ASGIApp:
    """The production ASGI app: the portal over the configured store, behind the access log."""
    from duban.runtime import open_store
    from portal.app import create_app

    store = open_store(settings)
    return RedactedAccessLog(create_app(settings, store.sessions))


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Run the portal with uvicorn until interrupted (blocks)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(build_app(settings), **uvicorn_options(settings, host=host, port=port))
