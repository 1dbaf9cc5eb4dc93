"""The one server ``ssl.SSLContext`` and the Hypercorn config that uses it.

Hypercorn builds its own context from certificate files at start. We hand it
ours instead, so a renewal can call ``load_cert_chain`` on the same object:
OpenSSL copies the certificate into each connection when it is created, so
new handshakes get the new certificate and open connections keep theirs.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from hypercorn.config import Config as HypercornConfig

from chatto.tls.cache import check_bundle

# HTTP/2 (RFC 7540 section 9.2) wants TLS 1.2+, AEAD ciphers, no compression.
ALPN = ["h2", "http/1.1"]
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def make_server_context() -> ssl.SSLContext:
    """A server context refusing anything older than TLS 1.2 (no certificate yet)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_ciphers(TLS12_CIPHERS)
    context.set_alpn_protocols(ALPN)
    return context


def swap_certificate(context: ssl.SSLContext, bundle: Path) -> None:
    """Load ``bundle`` (key + chain) into the live context.

    The bundle is checked on a scratch context first: a failed
    ``load_cert_chain`` on the live one could leave it without a usable key.
    """
    check_bundle(bundle)
    context.load_cert_chain(bundle)


class TlsHypercornConfig(HypercornConfig):
    """Hypercorn config whose TLS listeners use a context we own."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._owned_context = context

    @property
    def ssl_enabled(self) -> bool:
        return True

    def create_ssl_context(self) -> ssl.SSLContext:
        return self._owned_context
