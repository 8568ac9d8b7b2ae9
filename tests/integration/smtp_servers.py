"""Real SMTP servers on loopback for the mail tests: aiosmtpd with scripted replies."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from notifications.sink import free_port


@dataclass
class Delivery:
    """One message the server accepted."""

    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class ScriptedHandler:
    """Accepts mail, except: RCPT replies by address, DATA replies by first recipient.

    A DATA reply of `"drop"` closes the connection without answering. `on_rcpt` runs (in the
    server thread) when a recipient in `hooks` is given.
    """

    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, str] = field(default_factory=dict)
    hooks: dict[str, Callable[[], None]] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.hooks:
            self.hooks[address]()
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = self.data_replies.get(envelope.rcpt_tos[0])
        if reply == "drop":
            server.transport.close()
            return "250 never seen"
        if reply is not None:
            return reply
        message = message_from_bytes(envelope.original_content, policy=default)
        with self.lock:
            self.deliveries.append(Delivery(list(envelope.rcpt_tos), message))
        return "250 2.0.0 queued"

    def message_ids(self) -> Counter[str]:
        """How often each Message-ID was delivered."""
        with self.lock:
            return Counter(str(d.message["Message-ID"]) for d in self.deliveries)


def _refuse_everyone(*_: Any) -> AuthResult:
    return AuthResult(success=False, handled=False)


class ScriptedServer:
    """`ScriptedHandler` served by aiosmtpd on 127.0.0.1 in a background thread; `smtputf8`
    makes it offer SMTPUTF8 (RFC 6531)."""

    def __init__(
        self, handler: ScriptedHandler | None = None, *, auth: bool = False, smtputf8: bool = False
    ) -> None:
        self.handler = handler or ScriptedHandler()
        self.port = free_port()
        extra: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}
        if auth:
            extra |= {
                "auth_require_tls": False,
                "authenticator": _refuse_everyone,
            }
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=10, **extra
        )

    def __enter__(self) -> ScriptedServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
