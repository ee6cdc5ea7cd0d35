"""The paho-mqtt client every TLS-capable sitewatch component uses, and its set-up from the settings.

paho-mqtt 2.2 leaves the TCP socket open when the TLS handshake fails (a wrong CA, an expired
certificate), so a client retrying against a misconfigured broker leaks one socket per attempt.
``Client`` closes it. This overrides a private paho method, which is why paho-mqtt is pinned.
"""

from __future__ import annotations

import socket
import ssl

import paho.mqtt.client as mqtt

from .settings import MqttSettings


class Client(mqtt.Client):
    """paho's client, except that a failed TLS handshake closes its socket."""

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
