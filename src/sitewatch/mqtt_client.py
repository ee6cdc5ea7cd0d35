"""The paho-mqtt client every TLS-capable sitewatch component uses.

paho-mqtt 2.2 leaves the TCP socket open when the TLS handshake fails (a wrong CA, an expired
certificate), so a client retrying against a misconfigured broker leaks one socket per attempt.
``Client`` closes it. This overrides a private paho method, which is why paho-mqtt is pinned.
"""

from __future__ import annotations

import socket
import ssl

import paho.mqtt.client as mqtt


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
