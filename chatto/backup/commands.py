"""``chatto backup``, ``chatto restore`` and ``chatto keys export|import``.

With the embedded NATS, a backup talks to the running server's NATS if it
is up (backups work while serving) or starts a temporary one on the data
directory; a restore refuses while the server runs against the same data.
Archives are fully read and verified before anything is written.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from chatto import __version__
from chatto.backup import archive, dump
from chatto.backup.progress import Progress
from chatto.bus.bridge import NatsBridge, NatsSettings, open_nats_bridge
from chatto.bus.embedded import EmbeddedSettings, open_embedded_nats
from chatto.bus.storage import bootstrap_storage
from chatto.config import Config
from chatto.errors import ChattoError, StartupError, first_chatto_error


def secret_fingerprint(config: Config) -> str:
    key = config.core.secret_key.encode()
    return hmac.new(key, b"backup-fingerprint", hashlib.sha256).hexdigest()[:16]


def running_embedded(config: Config) -> str | None:
    """The URL of the embedded nats-server if one is serving this data dir."""
    conf = config.nats_store_dir / "nats-server.conf"
    try:
        listen = next(
            line.split(":", 1)[1].strip().strip('"')
            for line in conf.read_text().splitlines()
            if line.startswith("listen:")
        )
    except (OSError, StopIteration):
        return None
    host, _, port = listen.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=0.5):
            return f"nats://{listen}"
    except OSError:
        return None


@asynccontextmanager
async def open_store(config: Config, allow_running: bool) -> AsyncIterator[NatsBridge]:
    """A bridge to this server's NATS: running, temporary embedded, or external."""
    n = config.nats
    if not n.embedded.enabled:
        settings = NatsSettings(n.url, n.token, n.user, n.password, n.creds_file)
        async with open_nats_bridge(settings) as bridge:
            yield bridge
        return
    url = running_embedded(config)
    if url is not None:
        if not allow_running:
            raise StartupError("the server is running on this data directory: stop it first")
        async with open_nats_bridge(NatsSettings(url, token=n.embedded.token)) as bridge:
            yield bridge
        return
    temporary = EmbeddedSettings(n.embedded.host, 0, config.nats_store_dir, n.embedded.token)
    async with (
        open_embedded_nats(temporary) as status,
        open_nats_bridge(NatsSettings(status.url, token=n.embedded.token)) as bridge,
    ):
        yield bridge


def write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600 (a crash leaves no half-written archive)."""
    tmp = path.with_name(path.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def get_passphrase(given: str | None, confirm: bool) -> str:
    """--passphrase, $CHATTO_BACKUP_PASSPHRASE, a line on stdin, or a prompt."""
    if given:
        return given
    env = os.environ.get("CHATTO_BACKUP_PASSPHRASE")
    if env:
        return env
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\n")
        if line:
            return line
        raise ChattoError("no passphrase on standard input")
    first = getpass.getpass("Passphrase: ")
    if confirm and getpass.getpass("Again: ") != first:
        raise ChattoError("the passphrases differ")
    if not first:
        raise ChattoError("an empty passphrase is not allowed")
    return first


PLAINTEXT_KEYS = (
    "--include-keys without --encrypt would write raw encryption keys next to the data "
    "they protect; add --encrypt, or --i-understand-plaintext-keys if that is intended"
)


async def backup(
    config: Config,
    out: Path,
    encrypt: bool,
    include_keys: bool,
    passphrase: str | None,
    plaintext_keys: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Write an archive; with keys it is encrypted unless ``plaintext_keys``."""
    if include_keys and not encrypt and not plaintext_keys:
        # Such an archive reads every message and profile: refused by default.
        raise ChattoError(PLAINTEXT_KEYS)
    progress = progress or Progress()
    async with open_store(config, allow_running=True) as bridge:
        await bootstrap_storage(bridge, config.nats.replicas)  # a never-started server
        members = await dump.export_all(bridge, include_keys, progress)
    info = {
        "server_version": __version__,
        "include_keys": include_keys,
        "secret_fingerprint": secret_fingerprint(config),
    }
    data = archive.build(members, info)
    if encrypt:
        data = archive.encrypt(data, passphrase or get_passphrase(None, confirm=True))
    write_private(out, data)
    return out


def load_archive(path: Path, passphrase: str | None) -> archive.Archive:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise archive.ArchiveError(f"cannot read {path}: {exc.strerror}") from None
    if archive.is_encrypted(data):
        data = archive.decrypt(data, passphrase or get_passphrase(None, confirm=False))
    return archive.read(data)


async def restore(
    config: Config,
    path: Path,
    conflict: str,
    passphrase: str | None,
    progress: Progress | None = None,
) -> list[str]:
    """Restore an archive; returns notes for the operator."""
    parsed = load_archive(path, passphrase)  # everything verified before any write
    notes = []
    if parsed.manifest.get("secret_fingerprint") != secret_fingerprint(config):
        notes.append(
            "core.secret_key differs from the backup's: every session, token and "
            "pending code in it is invalid on this server"
        )
    from chatto.backup.keys import restore_notes  # local: keys imports this module

    notes += await restore_notes(config, parsed.members)
    if not parsed.manifest.get("include_keys"):
        notes.append(
            "the backup has no encryption keys: import them with `chatto keys import` "
            "or message bodies and profiles stay unreadable"
        )
    async with open_store(config, allow_running=False) as bridge:
        await bootstrap_storage(bridge, config.nats.replicas)
        await dump.import_all(bridge, parsed.members, conflict, progress or Progress())
    return notes


def run(fn: Any, *args: Any) -> Any:
    """trio.run, with a ChattoError from inside a nursery raised as itself (CLI edge)."""
    error: ChattoError | None = None
    try:
        return trio.run(fn, *args)
    except* ChattoError as group:
        error = first_chatto_error(group)
    assert error is not None
    raise error
