"""Automatic TLS end to end against a real ACME server (Debian's ``pebble``).

Each test starts ``pebble`` on free loopback ports with a throw-away CA for
its own HTTPS, and a whole Chatto whose ``[webserver.tls]`` points at it.
Pebble validates HTTP-01 by resolving ``localhost`` and connecting to the
Chatto plain listener (``http_port``), so nothing is mocked.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import re
import shutil
import ssl
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import attrs
import httpx
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chatto.bus.embedded import free_port
from chatto.config import Config
from chatto.errors import ChattoError, ConfigError, StartupError, first_chatto_error
from chatto.tls.cache import CertCache, write_private
from chatto.tls.challenge import ChallengeTokens, RedirectApp
from chatto.tls.manager import TlsSettings
from tests.authflow import register
from tests.conftest import ConfigFactory, ServerHandle, start_mail_server, start_server

PEBBLE = shutil.which("pebble")
needs_pebble = pytest.mark.skipif(
    PEBBLE is None, reason="pebble (Debian package `pebble`) is not installed"
)
DOMAIN = "localhost"
SECLEVEL0 = "DEFAULT:@SECLEVEL=0"  # lets OpenSSL 3 offer TLS 1.0/1.1 at all


# --- pebble -------------------------------------------------------------------
@attrs.frozen
class Pebble:
    directory: str
    management: str
    ca_bundle: Path  # trusts pebble's own HTTPS (not the certificates it issues)
    http_port: int  # where pebble connects for HTTP-01


def make_ca_cert(names: list[str], days: float) -> tuple[bytes, bytes]:
    """A self-signed certificate for ``names`` (and 127.0.0.1): (key PEM, cert PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    san.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def start_pebble(tmp: Path, validate_port: int) -> tuple[subprocess.Popen[bytes], Pebble]:
    assert PEBBLE is not None
    tmp.mkdir(exist_ok=True)
    key_pem, cert_pem = make_ca_cert(["localhost"], days=1)
    (tmp / "key.pem").write_bytes(key_pem)
    (tmp / "cert.pem").write_bytes(cert_pem)
    listen, manage = free_port("127.0.0.1"), free_port("127.0.0.1")
    (tmp / "pebble.json").write_text(
        '{"pebble": {'
        f'"listenAddress": "127.0.0.1:{listen}", '
        f'"managementListenAddress": "127.0.0.1:{manage}", '
        f'"certificate": "{tmp / "cert.pem"}", "privateKey": "{tmp / "key.pem"}", '
        f'"httpPort": {validate_port}, "tlsPort": {free_port("127.0.0.1")}, '
        '"ocspResponderURL": "", "externalAccountBindingRequired": false}}'
    )
    env = {
        **os.environ,
        "PEBBLE_VA_NOSLEEP": "1",
        "PEBBLE_WFE_NONCEREJECT": "0",
        # Every order answers a fresh challenge (no reused authorizations).
        "PEBBLE_AUTHZREUSE": "0",
    }
    log = tmp / "pebble.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PEBBLE, "-config", str(tmp / "pebble.json")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 10
    while b"ACME directory available" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("pebble did not start:\n" + log.read_text())
        time.sleep(0.02)
    pebble = Pebble(
        directory=f"https://127.0.0.1:{listen}/dir",
        management=f"https://127.0.0.1:{manage}",
        ca_bundle=tmp / "cert.pem",
        http_port=validate_port,
    )
    return proc, pebble


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def pebble(tmp_path: Path) -> Iterator[Pebble]:
    if PEBBLE is None:
        pytest.skip("pebble (Debian package `pebble`) is not installed")
    proc, server = start_pebble(tmp_path / "pebble", free_port("127.0.0.1"))
    yield server
    stop(proc)


def tls_env(pebble: Pebble, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "CHATTO_WEBSERVER_URL": f"https://{DOMAIN}",
        "CHATTO_WEBSERVER_TLS_ENABLED": "true",
        "CHATTO_WEBSERVER_TLS_DOMAIN": DOMAIN,
        "CHATTO_WEBSERVER_TLS_ACME_DIRECTORY": pebble.directory,
        "CHATTO_WEBSERVER_TLS_ACME_CA_BUNDLE": str(pebble.ca_bundle),
        "CHATTO_WEBSERVER_TLS_HTTP_PORT": str(pebble.http_port),
        "CHATTO_WEBSERVER_TLS_CACHE_DIR": str(tmp_path / "tls"),
        **extra,
    }


@pytest.fixture
async def tls_server(
    nursery: trio.Nursery, make_config: ConfigFactory, pebble: Pebble, tmp_path: Path
) -> AsyncIterator[ServerHandle]:
    handle = await start_server(nursery, make_config(**tls_env(pebble, tmp_path)))
    yield handle
    await handle.stop()


async def pebble_root(pebble: Pebble) -> str:
    """The root of pebble's issuing chain (regenerated at every pebble start)."""
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=pebble.ca_bundle)) as c:
        r = await c.get(f"{pebble.management}/roots/0")
        r.raise_for_status()
        return r.text


# --- clients ------------------------------------------------------------------
def https_port(server: ServerHandle) -> int:
    return int(server.url.rsplit(":", 1)[1])


async def open_tls(port: int, context: ssl.SSLContext) -> trio.SSLStream[trio.SocketStream]:
    stream = trio.SSLStream(
        await trio.open_tcp_stream("127.0.0.1", port), context, server_hostname=DOMAIN
    )
    await stream.do_handshake()
    return stream


def peer_serial(stream: trio.SSLStream[trio.SocketStream]) -> int:
    der = stream.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def http_get(stream: trio.abc.Stream, path: str) -> tuple[int, bytes]:
    """One keep-alive HTTP/1.1 GET on an open stream."""
    await stream.send_all(f"GET {path} HTTP/1.1\r\nhost: {DOMAIN}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive_some()
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    assert match, head
    while len(body) < int(match.group(1)):
        body += await stream.receive_some()
    return int(head.split()[1]), body


def legacy_client(maximum: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers(SECLEVEL0)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = maximum
    return context


async def speaks_tls11(nursery: trio.Nursery, bundle: Path) -> bool:
    """Control: our TLS 1.1 client does complete a handshake with a 1.1 server."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    server.set_ciphers(SECLEVEL0)
    server.load_cert_chain(bundle)
    listeners = await trio.open_ssl_over_tcp_listeners(0, server, host="127.0.0.1")
    port = listeners[0].transport_listener.socket.getsockname()[1]

    async def handshake(stream: trio.SSLStream[trio.SocketStream]) -> None:
        with trio.move_on_after(5):
            await stream.do_handshake()

    with trio.CancelScope() as scope:
        nursery.start_soon(trio.serve_listeners, handshake, listeners)
        stream = await open_tls(port, legacy_client(ssl.TLSVersion.TLSv1_1))
        version = stream.version()
        await stream.aclose()
    scope.cancel()
    return version == "TLSv1.1"


# --- tests --------------------------------------------------------------------
@needs_pebble
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_certificate_issued_served_tls12_minimum_and_http_redirects(
    tls_server: ServerHandle, pebble: Pebble, tmp_path: Path, nursery: trio.Nursery
) -> None:
    with trio.fail_after(30):
        manager = tls_server.running.services.tls
        assert manager is not None and manager.current is not None
        port = https_port(tls_server)
        assert tls_server.url.startswith("https://")

        # The issued chain verifies up to pebble's root for the domain.
        trusted = ssl.create_default_context(cadata=await pebble_root(pebble))
        stream = await open_tls(port, trusted)
        assert peer_serial(stream) == manager.current.serial
        assert stream.version() in ("TLSv1.2", "TLSv1.3")
        assert await http_get(stream, "/healthz") == (200, b'{"status":"ok"}')
        await stream.aclose()
        # What browsers do: HTTP/2 via ALPN, the name checked against the chain.
        async with httpx.AsyncClient(verify=trusted, http2=True) as c:
            r = await c.get(f"https://{DOMAIN}:{port}/api/server")
            assert (r.status_code, r.http_version) == (200, "HTTP/2")

        # The cache holds private files only.
        cache = tmp_path / "tls"
        assert stat.S_IMODE(cache.stat().st_mode) == 0o700
        for name in ("account.key", f"{DOMAIN}.pem"):
            assert stat.S_IMODE((cache / name).stat().st_mode) == 0o600

        # TLS 1.1 is refused although this client can speak it; TLS 1.2 works.
        assert await speaks_tls11(nursery, cache / f"{DOMAIN}.pem")
        with pytest.raises(trio.BrokenResourceError):
            await open_tls(port, legacy_client(ssl.TLSVersion.TLSv1_1))
        tls12 = legacy_client(ssl.TLSVersion.TLSv1_2)
        assert (await open_tls(port, tls12)).version() == "TLSv1.2"

        # Plain HTTP: 301 to https://domain:port/same?query, challenges answered.
        manager.tokens.put("tok-123", "tok-123.thumbprint")
        plain = f"http://127.0.0.1:{pebble.http_port}"
        assert tls_server.running.redirect_url == plain
        async with httpx.AsyncClient(base_url=plain) as c:
            r = await c.get("/api/server?x=1&y=%20")
            assert r.status_code == 301
            assert r.headers["location"] == f"https://{DOMAIN}:{port}/api/server?x=1&y=%20"
            r = await c.post("/auth/login", json={})
            assert r.status_code == 301
            r = await c.get("/.well-known/acme-challenge/tok-123")
            assert (r.status_code, r.text) == (200, "tok-123.thumbprint")
            r = await c.get("/.well-known/acme-challenge/unknown")
            assert r.status_code == 404


@needs_pebble
async def test_forced_renewal_swaps_certificate_without_dropping_connections(
    tls_server: ServerHandle, pebble: Pebble
) -> None:
    with trio.fail_after(30):
        manager = tls_server.running.services.tls
        assert manager is not None and manager.current is not None
        port = https_port(tls_server)
        trusted = ssl.create_default_context(cadata=await pebble_root(pebble))

        old_stream = await open_tls(port, trusted)
        old_serial = peer_serial(old_stream)
        assert await http_get(old_stream, "/healthz") == (200, b'{"status":"ok"}')

        renewed = await manager.renew_now()
        assert renewed.serial != old_serial
        assert manager.statistics().renewals == 2  # the first order and this one

        # The open keep-alive connection still works (with its old certificate) ...
        assert await http_get(old_stream, "/healthz") == (200, b'{"status":"ok"}')
        assert peer_serial(old_stream) == old_serial
        # ... and a new handshake on the same listener sees the new one.
        new_stream = await open_tls(port, trusted)
        assert peer_serial(new_stream) == renewed.serial
        assert await http_get(new_stream, "/healthz") == (200, b'{"status":"ok"}')
        await old_stream.aclose()
        await new_stream.aclose()


def broken_acme_env(directory: str, tmp_path: Path) -> dict[str, str]:
    return {
        "CHATTO_WEBSERVER_TLS_ENABLED": "true",
        "CHATTO_WEBSERVER_TLS_DOMAIN": DOMAIN,
        "CHATTO_WEBSERVER_TLS_ACME_DIRECTORY": directory,
        "CHATTO_WEBSERVER_TLS_HTTP_PORT": "0",
        "CHATTO_WEBSERVER_TLS_CACHE_DIR": str(tmp_path / "tls"),
    }


def write_cached(cache: Path, days: float) -> int:
    """A cached bundle for DOMAIN expiring in ``days``; returns its serial."""
    key_pem, cert_pem = make_ca_cert([DOMAIN], days)
    cache.mkdir(mode=0o700, exist_ok=True)
    write_private(cache / f"{DOMAIN}.pem", key_pem + cert_pem)
    return x509.load_pem_x509_certificate(cert_pem).serial_number


async def test_acme_unreachable_with_cache_serves_cached_certificate(
    nursery: trio.Nursery,
    make_config: ConfigFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="chatto.tls")
    directory = f"https://127.0.0.1:{free_port('127.0.0.1')}/dir"  # nothing listens
    serial = write_cached(tmp_path / "tls", days=10)  # due: renew_before_days is 30
    with trio.fail_after(30):
        config = make_config(**broken_acme_env(directory, tmp_path))
        server = await start_server(nursery, config)
        try:
            stream = await open_tls(https_port(server), legacy_client(ssl.TLSVersion.TLSv1_3))
            assert peer_serial(stream) == serial
            assert await http_get(stream, "/healthz") == (200, b'{"status":"ok"}')
            await stream.aclose()
            stats = server.running.services.tls.statistics()  # type: ignore[union-attr]
            assert stats.failures == 1 and stats.serial == serial
        finally:
            await server.stop()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    line = errors[0].getMessage()
    assert "\n" not in line
    assert f"ACME order for {DOMAIN} at {directory} failed" in line
    assert "cannot connect to the ACME server" in line
    assert "serving the cached certificate" in line
    assert "PRIVATE KEY" not in caplog.text


async def first_start_error(nursery: trio.Nursery, config: Config) -> ChattoError:
    """The error a failed start raises (unwrapped as the CLI does)."""
    errors: list[ChattoError] = []
    try:
        await start_server(nursery, config)
    except* ChattoError as group:
        errors.append(first_chatto_error(group))
    assert errors, "the server started without a certificate"
    return errors[0]


async def test_acme_unreachable_without_cache_fails_start_with_one_line(
    nursery: trio.Nursery, make_config: ConfigFactory, tmp_path: Path
) -> None:
    directory = f"https://127.0.0.1:{free_port('127.0.0.1')}/dir"  # nothing listens
    with trio.fail_after(30):
        exc = await first_start_error(nursery, make_config(**broken_acme_env(directory, tmp_path)))
    assert isinstance(exc, StartupError)
    assert exc.message == (
        f"no TLS certificate yet: ACME order for {DOMAIN} at {directory} failed: "
        "cannot connect to the ACME server"
    )


@needs_pebble
async def test_failed_validation_without_cache_fails_start_naming_the_cause(
    nursery: trio.Nursery, make_config: ConfigFactory, pebble: Pebble, tmp_path: Path
) -> None:
    # Chatto's plain listener is not where the CA looks (wrong port forward, DNS ...).
    env = tls_env(pebble, tmp_path, CHATTO_WEBSERVER_TLS_HTTP_PORT="0")
    with trio.fail_after(30):
        exc = await first_start_error(nursery, make_config(**env))
    assert isinstance(exc, StartupError)
    assert exc.message.startswith(f"no TLS certificate yet: ACME order for {DOMAIN} at ")
    assert "challenge validation failed (connection:" in exc.message, exc.message
    assert "\n" not in exc.message
    assert not (tmp_path / "tls" / f"{DOMAIN}.pem").exists()


# --- upstream TLS and configuration ---------------------------------------------
async def test_upstream_tls_url_sets_secure_cookie_flag(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    """TLS terminated by a proxy: an https:// webserver.url alone makes cookies Secure."""
    env = await start_mail_server(
        nursery, make_config, CHATTO_WEBSERVER_URL="https://chat.example.com"
    )
    try:
        with trio.fail_after(30):
            async with httpx.AsyncClient(base_url=env.url) as c:
                await register(c, env.sink, "sec@example.com", "sec", "password-123")
                r = await c.post("/auth/login", json={"login": "sec", "password": "password-123"})
                assert r.status_code == 200, r.text
                cookie = r.headers["set-cookie"]
                assert cookie.startswith("chatto_session=") and "; Secure" in cookie
    finally:
        await env.server.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CHATTO_WEBSERVER_TLS_ENABLED": "true"},
            "config key 'webserver.tls.domain' must be a DNS name",
        ),
        (
            {"CHATTO_WEBSERVER_TLS_ENABLED": "true", "CHATTO_WEBSERVER_TLS_DOMAIN": "a b.com"},
            "config key 'webserver.tls.domain' must be a DNS name",
        ),
        (
            {
                "CHATTO_WEBSERVER_TLS_ENABLED": "true",
                "CHATTO_WEBSERVER_TLS_DOMAIN": "chat.example.com",
                "CHATTO_WEBSERVER_TLS_ACME_DIRECTORY": "http://ca.example/dir",
            },
            "config key 'webserver.tls.acme_directory' must be an https:// URL",
        ),
        (
            {
                "CHATTO_WEBSERVER_TLS_ENABLED": "true",
                "CHATTO_WEBSERVER_TLS_DOMAIN": "chat.example.com",
                "CHATTO_WEBSERVER_TLS_ACME_CA_BUNDLE": "missing.pem",
            },
            "config key 'webserver.tls.acme_ca_bundle' must name a readable file",
        ),
        (
            {"CHATTO_WEBSERVER_TLS_RENEW_BEFORE_DAYS": "soon"},
            "environment variable CHATTO_WEBSERVER_TLS_RENEW_BEFORE_DAYS must be a number",
        ),
    ],
)
def test_tls_config_errors_are_one_line_naming_the_key(
    make_config: ConfigFactory, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(**env)
    assert info.value.message.startswith(message)
    assert "\n" not in info.value.message


def test_tls_config_defaults_and_secure_cookies(make_config: ConfigFactory) -> None:
    plain = make_config()
    t = plain.webserver.tls
    assert not t.enabled and t.http_port == 80 and t.renew_before_days == 30
    assert t.acme_directory == "https://acme-v02.api.letsencrypt.org/directory"
    assert plain.tls_cache_dir == plain.data_dir / "tls"
    assert not plain.cookies_secure
    tls = make_config(
        CHATTO_WEBSERVER_TLS_ENABLED="true", CHATTO_WEBSERVER_TLS_DOMAIN="Chat.Example.com."
    )
    assert tls.cookies_secure  # Chatto terminates TLS itself, whatever webserver.url says
    assert TlsSettings.from_config(tls).acme.domain == "chat.example.com"


# --- small parts --------------------------------------------------------------
def test_redirect_location_keeps_path_and_query_and_drops_port_443() -> None:
    app = RedirectApp(ChallengeTokens(), "chat.example.com", 443)
    assert app.location(b"/a%20b", b"x=1") == b"https://chat.example.com/a%20b?x=1"
    assert app.location(b"", b"") == b"https://chat.example.com/"
    app.https_port = 8443
    assert app.location(b"/", b"") == b"https://chat.example.com:8443/"


def test_cache_ignores_bundles_for_other_names_and_mismatched_keys(tmp_path: Path) -> None:
    write_cached(tmp_path, days=10)
    assert CertCache(tmp_path, DOMAIN).load() is not None
    assert CertCache(tmp_path, "other.example").load() is None
    other_key, _ = make_ca_cert([DOMAIN], 1)
    _, cert = make_ca_cert([DOMAIN], 1)
    write_private(tmp_path / f"{DOMAIN}.pem", other_key + cert)
    assert CertCache(tmp_path, DOMAIN).load() is None
    with pytest.raises(ssl.SSLError):
        CertCache(tmp_path, DOMAIN).store(other_key, cert)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{DOMAIN}.pem"]
