"""The embedded SMTP server: aiosmtpd on 127.0.0.1 storing every message in a Maildir.

For the demo and development (`DUBAN_SMTP_EMBEDDED=true`), and for tests. `MailSink` runs
the server in a background thread (start/stop, or as a context manager); `duban mail sink`
runs it in the foreground. The Maildir can be opened by a person (`duban mail store`,
mutt -f, or any Maildir-aware client).
"""

from __future__ import annotations

import mailbox
import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller

ENVELOPE_HEADER = "X-Duban-Envelope-To"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on `host` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class MaildirHandler:
    """aiosmtpd handler that adds each message, with its envelope recipients, to a Maildir.

    Creates the Maildir and its missing parent directories (raises `OSError` if it cannot).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(path, create=True)
        self._lock = threading.Lock()
        self.received = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: ARG002
        """Store the message and answer 250."""
        content: bytes = envelope.original_content or envelope.content
        header = f"{ENVELOPE_HEADER}: {', '.join(envelope.rcpt_tos)}\r\n".encode()
        with self._lock:
            self.maildir.add(header + content)
            self.received += 1
        return "250 2.0.0 Message accepted for delivery"


class MailSink:
    """The embedded SMTP server in a background thread; `port=0` picks a free port."""

    def __init__(self, *, path: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.path = path
        self.host = host
        self.port = port or free_port(host)
        self.handler = MaildirHandler(path)
        self._controller = Controller(
            self.handler,
            hostname=host,
            port=self.port,
            enable_SMTPUTF8=True,
            server_hostname="duban-sink.local",
            ready_timeout=10,
        )

    def start(self) -> Self:
        """Start serving; returns self once the server answers."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        self._controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
