"""Decoding finding payloads in a child process, beside the one that applies them.

Decoding and checking a finding (``contract.decode_findings``) costs about as much CPU as applying
it, and both are Python holding one interpreter lock: in one process they take turns on one core.
``Decoder`` runs ``decode_findings`` in a child process: the MQTT thread hands it each payload as
it arrives, and the applying thread takes the results in the same order, while the child decodes
the next messages. A result comes back as the findings alone, in msgpack (decoded straight into
``Finding``, several times cheaper than decoding the JSON or unpickling them), or, when anything
was refused, as the pickled ``Decoded`` with its rejections. What is refused, and why, is what
``decode_findings`` says in either process; acknowledging after the commit stays with the parent.
If the child dies, the parent decodes the messages itself from then on.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import pickle
import signal
import struct
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from ..contract import Finding, Limits, decode_findings
from ..contract.validate import Decoded

log = logging.getLogger(__name__)
_FINDINGS, _DECODED = b"F", b"D"
_HEAD = struct.Struct("<I")  # the topic's length, before the topic and the payload


def _serve(requests: Connection, results: Connection, max_payload_bytes: int) -> None:
    """The child: decode each (topic, payload) it is sent, in order, until the parent closes its end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops the child
    limits = Limits(max_payload_bytes=max_payload_bytes)
    encode = msgspec.msgpack.Encoder().encode
    while True:
        try:
            request = requests.recv_bytes()
        except (EOFError, OSError):
            return
        (size,) = _HEAD.unpack_from(request)
        topic = request[_HEAD.size : _HEAD.size + size].decode("utf-8")
        decoded = decode_findings(topic, request[_HEAD.size + size :], limits=limits)
        if decoded.message is not None and not decoded.rejections:
            results.send_bytes(_FINDINGS + encode(decoded.message))
        else:
            results.send_bytes(_DECODED + pickle.dumps(decoded, protocol=pickle.HIGHEST_PROTOCOL))


class Decoder:
    """``decode_findings`` in a child process: :meth:`send` payloads, :meth:`receive` their results
    in the same order (see the module docstring). One thread sends, another may receive."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        context = multiprocessing.get_context("spawn")  # not fork: the parent runs threads
        child_requests, self._requests = context.Pipe(duplex=False)
        self._results, child_results = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_serve, args=(child_requests, child_results, limits.max_payload_bytes),
            name="sitewatch-alerts-decoder", daemon=True,
        )  # fmt: skip
        self._process.start()
        child_requests.close()
        child_results.close()
        self._decode = msgspec.msgpack.Decoder(tuple[Finding, ...]).decode
        self.failed = False  # the child is gone: the caller decodes in its own process

    @property
    def pid(self) -> int | None:
        """The child's process id."""
        return self._process.pid

    def send(self, topic: str, payload: bytes) -> bool:
        """Hand a payload to the child (blocking while it is that far behind); False, and nothing
        sent, when the child is gone."""
        if self.failed:
            return False
        try:
            encoded = topic.encode("utf-8")
            self._requests.send_bytes(_HEAD.pack(len(encoded)) + encoded + payload)
        except (OSError, ValueError, UnicodeEncodeError) as exc:
            self._fail(exc)
            return False
        return True

    def receive(self) -> Decoded[tuple[Finding, ...]] | None:
        """The result of the oldest payload sent and not yet received; None when the child is gone
        (decode that payload in this process)."""
        try:
            result = self._results.recv_bytes()
        except (EOFError, OSError) as exc:
            self._fail(exc)
            return None
        if result[:1] == _FINDINGS:
            return Decoded(self._decode(memoryview(result)[1:]))
        decoded: Decoded[tuple[Finding, ...]] = pickle.loads(memoryview(result)[1:])
        return decoded

    def _fail(self, exc: BaseException) -> None:
        """Give the child up: killed, so that a result still awaited ends in EOF, not a wait."""
        if not self.failed:
            log.error("the finding decoder process failed (%s); decoding in this process", exc)
        self.failed = True
        with contextlib.suppress(OSError, ValueError):
            self._process.kill()

    def stop(self) -> None:
        """Stop the child. It holds nothing to keep (the messages it had are not acknowledged and
        come again), and a sender blocked on its full pipe gets an error rather than waiting."""
        self.failed = True
        self._process.terminate()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)

    def close(self) -> None:
        """Stop the child and close the pipes (once no thread uses them)."""
        self.stop()
        for end in (self._requests, self._results):
            with contextlib.suppress(OSError):
                end.close()


def decode_here(topic: str, payload: bytes, limits: Limits) -> Decoded[tuple[Finding, ...]]:
    """``decode_findings`` in this process (no child, or the child gone)."""
    return decode_findings(topic, payload, limits=limits)


__all__: list[Any] = ["Decoder", "decode_here"]
