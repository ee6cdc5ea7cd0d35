"""Shared test tools: a list-collecting connector sink, an async wait, throw-away TLS certificates,
the cyclic garbage a piece of code leaves."""

from __future__ import annotations

import asyncio
import gc
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from sitewatch.contract import DeviceKind, Event, Sample


class ListSink:
    """Collects what connectors deliver (thread-safe: some deliver from paho's network thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: list[list[Sample]] = []  # as handed over, one list per samples() call
        self.sample_list: list[Sample] = []
        self.event_list: list[Event] = []

    def samples(self, samples: Sequence[Sample]) -> None:
        with self.lock:
            self.batches.append(list(samples))
            self.sample_list.extend(samples)

    def events(self, events: Sequence[Event]) -> None:
        with self.lock:
            self.event_list.extend(events)

    def of(self, device: str) -> list[Sample]:
        with self.lock:
            return [s for s in self.sample_list if s.device == device]

    def last(self, device: str) -> Sample:
        return self.of(device)[-1]

    def values(self, device: str, metric: str) -> list[float]:
        return [s.values[metric] for s in self.of(device) if metric in s.values]

    def devices(self, kind: DeviceKind) -> set[str]:
        with self.lock:
            return {s.device for s in self.sample_list if s.kind is kind}

    def named(self, device: str, name: str) -> list[Event]:
        with self.lock:
            return [e for e in self.event_list if e.device == device and e.name == name]

    def names(self, device: str) -> list[str]:
        with self.lock:
            return [e.name for e in self.event_list if e.device == device]


async def wait_for(
    check: Callable[[], bool], timeout: float = 10.0, what: Callable[[], str] = lambda: ""
) -> None:
    """Poll ``check`` until it holds; AssertionError (with ``what()``) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in time {what()}".rstrip())
        await asyncio.sleep(0.02)


def make_certificates(folder: Path) -> dict[str, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed to make test certificates (apt-get install openssl)")
    folder.mkdir()
    p = {
        name: folder / name for name in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt", "san")
    }
    p["san"].write_text("subjectAltName=IP:127.0.0.1\n")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(p["ca.key"]), "-out", str(p["ca.crt"]),
        "-days", "2", "-subj", "/CN=sitewatch test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(p["server.key"]), "-out", str(p["server.csr"]),
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    run("x509", "-req", "-in", str(p["server.csr"]), "-CA", str(p["ca.crt"]), "-CAkey", str(p["ca.key"]),
        "-CAcreateserial", "-out", str(p["server.crt"]), "-days", "2", "-extfile", str(p["san"]))  # fmt: skip
    return p


@contextmanager
def cyclic_garbage() -> Iterator[list[str]]:
    """The "module.qualname" of every object the block left in reference cycles (filled on exit).

    The cyclic collector is off inside the block, so nothing is freed before it is counted.
    """
    left: list[str] = []
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield left
        gc.collect()
        left += [f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
