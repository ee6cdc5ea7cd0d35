"""The paho-mqtt client every TLS-capable sitewatch component uses, and its set-up from the settings.

paho-mqtt 2.2 leaves the TCP socket open when the TLS handshake fails (a wrong CA, an expired
certificate), so a client retrying against a misconfigured broker leaks one socket per attempt.
``Client`` closes it. And paho matches every incoming message against the per-topic callbacks
with a closure that refers to itself: a reference cycle per message, freed only by the cyclic
collector, which ingest runs rarely (``ingest.cli.GC_THRESHOLDS``). ``Client`` skips the match when
there are no per-topic callbacks. Both override private paho parts, which is why paho-mqtt is pinned.

``client_for`` and ``connect_options`` build and connect a client for ``mqtt.protocol`` (MQTT 5, or
3.1.1 for brokers without it), keeping the broker session or not, for the gateway and ingest alike.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .settings import MqttProtocol, MqttSettings


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


def message_topic(message: mqtt.MQTTMessage) -> str:
    """A received message's topic; one that is not UTF-8 (brokers should refuse it; if one passes, the
    consumer refuses it as a bad topic) with its bad bytes replaced, instead of paho's exception."""
    try:
        return message.topic
    except UnicodeDecodeError:
        return bytes(getattr(message, "_topic", b"")).decode("utf-8", "replace")


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


def client_for(settings: MqttSettings, client_id: str, *, keep_session: bool, **kwargs: Any) -> Client:
    """A ``Client`` speaking ``settings.protocol``, with the credentials and TLS of ``settings``.

    ``keep_session``: the broker keeps the session (subscriptions, queued messages) between
    connections; otherwise each connection starts clean. MQTT 3.1.1 says it here (clean_session),
    MQTT 5 at each connection: pass ``connect_options`` to ``connect``/``connect_async``.
    ``kwargs`` go to paho's client (``manual_ack``, ``reconnect_on_failure``).
    """
    if settings.protocol is MqttProtocol.V5:
        client = Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, **kwargs)
    else:
        client = Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=not keep_session,
            **kwargs,
        )
    apply_credentials(client, settings)
    return client


def connect_options(
    settings: MqttSettings,
    *,
    keep_session: bool,
    session_expiry_s: int = 0,
    receive_maximum: int | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``connect``/``connect_async`` of a ``client_for`` client: MQTT 5's clean
    start and CONNECT properties (session expiry when the session is kept, Receive Maximum); none
    for MQTT 3.1.1, which has neither."""
    if settings.protocol is not MqttProtocol.V5:
        return {}
    options: dict[str, Any] = {"clean_start": not keep_session}
    if keep_session or receive_maximum is not None:
        props = Properties(PacketTypes.CONNECT)
        if keep_session:
            props.SessionExpiryInterval = session_expiry_s
        if receive_maximum is not None:
            props.ReceiveMaximum = receive_maximum
        options["properties"] = props
    return options
