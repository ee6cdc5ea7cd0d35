"""Local TCP ports: a free one to listen on, and whether something listens on one."""

from __future__ import annotations

import socket
import threading

_GIVEN: set[int] = set()  # ports this process has handed out (the kernel may offer a closed one again)
_LOCK = threading.Lock()
_TRIES = 64


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and that this process has not
    handed out before: a caller may bind its port only later (a simulated site chooses its
    servers' ports before it starts them), and the kernel offers a port again once its probe
    socket is closed."""
    with _LOCK:
        port = 0
        for _ in range(_TRIES):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if port not in _GIVEN:
                break
        _GIVEN.add(port)
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0
