"""A group-robot receiver on loopback (HTTPS, self-signed) that checks each app's format.

Paths follow the apps' webhooks: `/cgi-bin/webhook/send?key=K` (企业微信),
`/robot/send?access_token=T` (钉钉, `timestamp`/`sign` query checked when the token has a
secret), `/open-apis/bot/v2/hook/T` (飞书, `timestamp`/`sign` in the body checked when it
has a secret). A message in the wrong format is answered the way the app does (HTTP 200
with a non-zero code) and recorded in `rejected`; `fail_with[token]` makes the receiver
answer that HTTP status instead.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written under `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "robot.pem", directory / "robot.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Received:
    """One accepted message: app, token, query and JSON body."""

    app: str
    token: str
    query: dict[str, str]
    body: dict[str, Any]

    @property
    def text(self) -> str:
        """The message's text content."""
        if self.app == "feishu":
            return str(self.body["content"]["text"])
        return str(self.body["text"]["content"])


@dataclass
class RobotReceiver:
    """The receiver's state: secrets per token, forced HTTP failures, what arrived."""

    secrets: dict[str, str] = field(default_factory=dict)
    fail_with: dict[str, int] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    port: int = 0

    def url(self, app: str, token: str) -> str:
        """The webhook address of `token` on this receiver, as the app would show it."""
        base = f"https://127.0.0.1:{self.port}"
        if app == "wecom":
            return f"{base}/cgi-bin/webhook/send?key={token}"
        if app == "dingtalk":
            return f"{base}/robot/send?access_token={token}"
        return f"{base}/open-apis/bot/v2/hook/{token}"

    def check(self, path: str, query: dict[str, str], body: dict[str, Any]) -> tuple[str, str]:
        """Raise ValueError(reason) unless the message is in its app's documented format;
        return (app, token)."""
        if path == "/cgi-bin/webhook/send":
            token = query["key"]
            kind = body["msgtype"]
            if kind not in ("text", "markdown") or not isinstance(body[kind]["content"], str):
                raise ValueError("wecom: msgtype/content")
            return "wecom", token
        if path == "/robot/send":
            token = query["access_token"]
            if body["msgtype"] != "text" or not isinstance(body["text"]["content"], str):
                raise ValueError("dingtalk: msgtype/text")
            secret = self.secrets.get(token)
            if secret:
                stamp = query["timestamp"]
                wanted = base64.b64encode(
                    hmac.new(
                        secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256
                    ).digest()
                ).decode()
                if query.get("sign") != wanted or abs(time.time() * 1000 - int(stamp)) > 3.6e6:
                    raise ValueError("dingtalk: sign")
            return "dingtalk", token
        if path.startswith("/open-apis/bot/v2/hook/"):
            token = path.rsplit("/", 1)[-1]
            if body["msg_type"] != "text" or not isinstance(body["content"]["text"], str):
                raise ValueError("feishu: msg_type/content")
            secret = self.secrets.get(token)
            if secret:
                stamp = str(body["timestamp"])
                key = f"{stamp}\n{secret}".encode()
                wanted = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
                if body.get("sign") != wanted or abs(time.time() - int(stamp)) > 3600:
                    raise ValueError("feishu: sign")
            return "feishu", token
        raise ValueError(f"unknown path {path}")


def _handler(state: RobotReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            token = query.get("key") or query.get("access_token") or parts.path.rsplit("/", 1)[-1]
            if token in state.fail_with:
                self.send_response(state.fail_with[token])
                self.end_headers()
                return
            feishu = parts.path.startswith("/open-apis/")
            try:
                body = json.loads(raw.decode("utf-8"))
                app, token = state.check(parts.path, query, body)
            except (ValueError, KeyError, TypeError) as exc:
                state.rejected.append(str(exc))
                reply = {
                    "code": 19021,
                    "msg": "sign match fail or timestamp is not within one hour",
                }
                if not feishu:
                    reply = {"errcode": 310000, "errmsg": f"keywords not in content ({exc})"}
            else:
                state.received.append(Received(app, token, query, body))
                reply = {"code": 0, "msg": "success"} if feishu else {"errcode": 0, "errmsg": "ok"}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


class RobotServer:
    """`RobotReceiver` served over HTTPS on 127.0.0.1 in a background thread."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.state = RobotReceiver()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.state.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RobotReceiver:
        self.thread.start()
        return self.state

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
