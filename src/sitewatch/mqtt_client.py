"""The paho-mqtt client every TLS-capable sitewatch component uses, and its set-up from the settings.

paho-mqtt 2.2 leaves the TCP socket open when the TLS handshake fails (a wrong CA, an expired
certificate), so a client retrying against a misconfigured broker leaks one socket per attempt.
``Client`` closes it. And paho matches every incoming message against the per-topic callbacks
with a closure that refers to itself: a reference cycle per message, freed only by the cyclic
collector, which ingest runs rarely (``ingest.cli.GC_THRESHOLDS``). ``Client`` skips the match when
there are no per-topic callbacks. Both override private paho parts, which is why paho-mqtt is pinned.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.matcher import MQTTMatcher

from .settings import MqttSettings


class _Matcher(MQTTMatcher):
    """paho's topic matcher, without the reference cycle when it holds no filters."""

    def iter_match(self, topic: str) -> Iterator[Any]:
        if not self._root._children and self._root._content is None:
            return iter(())
        return super().iter_match(topic)


class Client(mqtt.Client):
    """paho's client, except that a failed TLS handshake closes its socket, and a message with no
    per-topic callback leaves no garbage for the cyclic collector."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_message_filtered = _Matcher()

    def _ssl_wrap_socket(self, tcp_sock: socket.socket) -> ssl.SSLSocket:
        context = self._ssl_context
        if context is None:
            raise ValueError("TLS requested without a TLS context")
        ssl_sock = context.wrap_socket(tcp_sock, server_hostname=self._host, do_handshake_on_connect=False)
        try:
            ssl_sock.settimeout(self._connect_timeout)
            ssl_sock.do_handshake()  # the context checks the certificate and the host name
        except BaseException:
            ssl_sock.close()
            raise
        return ssl_sock


def apply_credentials(client: mqtt.Client, settings: MqttSettings) -> None:
    """Set the user name and password, and TLS (the CA, a client certificate) of ``settings``."""
    if settings.username:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if settings.tls:
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
