"""Free local ports: never the same one twice in a process, though the kernel may offer it again."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

import sitewatch.ports as ports


def test_ports_handed_out_are_distinct_and_free() -> None:
    got = [ports.free_port() for _ in range(200)]
    assert len(set(got)) == len(got)
    for port in got[:20]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))  # nothing listens there


def test_a_port_the_kernel_offers_again_is_not_handed_out_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    offered: Iterator[int] = iter([40001, 40001, 40001, 40002])

    class Probe:
        def __init__(self, *_args: Any) -> None:
            self.port = next(offered)

        def __enter__(self) -> Probe:
            return self

        def __exit__(self, *_args: Any) -> None:
            return None

        def bind(self, _address: Any) -> None:
            return None

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(ports, "_GIVEN", set())
    monkeypatch.setattr(ports.socket, "socket", Probe)
    assert ports.free_port() == 40001
    assert ports.free_port() == 40002  # the kernel's second and third offers were the same port
