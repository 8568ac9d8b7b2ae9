"""Local TCP ports: say in one line, with the fix, when one a service needs is taken."""

from __future__ import annotations

import errno
import socket


def port_problem(host: str, port: int, what: str, fix: str) -> str | None:
    """One line saying `host:port` is taken and how to choose another, or None if free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "已被占用" if exc.errno == errno.EADDRINUSE else f"无法监听（{exc.strerror}）"
            return f"{what}端口 {host}:{port} {reason}：停止占用它的程序，或{fix}。"
    return None
