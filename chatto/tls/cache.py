"""The certificate cache on disk: the ACME account key and one bundle per domain.

Layout under ``webserver.tls.cache_dir`` (mode 0700):
``account.key`` (PEM, PKCS#8) and ``<domain>.pem`` (the certificate's private
key followed by the full chain). Every file is written 0600 to a temporary
name, flushed and renamed into place, so a crash leaves either the old bundle
or the new one, never a key that does not match its certificate. Functions
here are blocking; callers run them in a worker thread.
"""

from __future__ import annotations

import datetime
import os
import ssl
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID

from chatto.errors import StartupError


@attrs.frozen
class CertInfo:
    """What the server needs to know about a certificate (no key material)."""

    path: Path
    serial: int
    not_after: datetime.datetime
    domains: tuple[str, ...]

    @classmethod
    def from_pem(cls, path: Path, chain_pem: bytes) -> CertInfo:
        leaf = x509.load_pem_x509_certificate(chain_pem)
        try:
            san = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
            names = tuple(san.value.get_values_for_type(x509.DNSName))  # type: ignore[attr-defined]
        except x509.ExtensionNotFound:
            names = ()
        return cls(path, leaf.serial_number, leaf.not_valid_after_utc, names)

    def renew_at(self, before: datetime.timedelta) -> datetime.datetime:
        return self.not_after - before


@attrs.frozen
class CertCache:
    """Reads and writes the cache directory of one domain."""

    root: Path
    domain: str

    @property
    def bundle_path(self) -> Path:
        return self.root / f"{self.domain}.pem"

    @property
    def account_key_path(self) -> Path:
        return self.root / "account.key"

    def prepare(self) -> None:
        """Create the directory (0700); ``StartupError`` when that is impossible."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.root.chmod(0o700)
        except OSError as exc:
            raise StartupError(
                f"cannot use webserver.tls.cache_dir {self.root}: {exc.strerror}"
            ) from None

    def account_key(self) -> bytes:
        """The ACME account key (PEM), created on first use."""
        path = self.account_key_path
        if path.exists():
            return path.read_bytes()
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private(path, pem)
        return pem

    def load(self) -> CertInfo | None:
        """The cached bundle if it exists, parses, matches its key and names the domain."""
        path = self.bundle_path
        try:
            pem = path.read_bytes()
            info = CertInfo.from_pem(path, _chain_part(pem))
            check_bundle(path)
        except (OSError, ValueError, ssl.SSLError):
            return None
        return info if self.domain in info.domains else None

    def store(self, key_pem: bytes, chain_pem: bytes) -> CertInfo:
        """Write a new bundle after checking that key and chain belong together."""
        path = self.bundle_path
        staged = path.with_name(path.name + ".new")
        write_private(staged, key_pem + chain_pem)
        try:
            check_bundle(staged)
        except ssl.SSLError:
            staged.unlink(missing_ok=True)
            raise
        os.replace(staged, path)
        return CertInfo.from_pem(path, chain_pem)


def check_bundle(path: Path) -> None:
    """Raise ``ssl.SSLError`` unless the file holds a key and a matching chain."""
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(path)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` as a 0600 file, atomically (temporary name, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _chain_part(pem: bytes) -> bytes:
    start = pem.find(b"-----BEGIN CERTIFICATE-----")
    if start < 0:
        raise ValueError("no certificate in bundle")
    return pem[start:]
