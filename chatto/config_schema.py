"""The configuration schema: one frozen attrs class per TOML section.

Each field's annotation and metadata are the single source of truth: the
loader (``chatto.config``) derives key names, TOML types, environment
variable names and redaction from them, and ``chatto init`` renders its file
from the defaults. Adding a key is therefore one line here plus its entry in
``chatto.toml.example`` (a test keeps the two in step).
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import attrs

# Marks a field whose value must never leave the process: redacted() hides
# it and error messages about it name the key only.
SECRET = {"secret": True}
# Marks a field that is not a config key (derived at load time).
INTERNAL = {"internal": True}
# Marks a key still read from old files but no longer written or documented;
# the loader maps it onto its replacement (see chatto.config).
DEPRECATED = {"deprecated": True}
REGISTRATION_MODES = ("open", "invite-only", "closed")
REDACTED = "<redacted>"


def _secret(default: str = "") -> Any:
    return attrs.field(default=default, metadata=SECRET)


@attrs.frozen
class CoreConfig:
    """``[core]``: identity and where data lives."""

    secret_key: str = _secret()
    data_dir: str = "./data"
    server_name: str = "Chatto"


LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"


@attrs.frozen
class TlsConfig:
    """``[webserver.tls]``: HTTPS with certificates from an ACME CA (HTTP-01)."""

    enabled: bool = False
    domain: str = ""
    acme_directory: str = LETS_ENCRYPT_DIRECTORY
    email: str = ""
    cache_dir: str = ""
    http_port: int = 80
    renew_before_days: float = 30.0
    retry_seconds: float = 3600.0
    acme_ca_bundle: str = ""


@attrs.frozen
class WebserverConfig:
    """``[webserver]``: the HTTP listener, cookies and request limits."""

    host: str = "127.0.0.1"
    port: int = 4000
    url: str = "http://localhost:4000"
    cookie_signing_secret: str = _secret()
    cookie_encryption_secret: str = _secret()
    asset_signing_secret: str = _secret()
    allowed_origins: list[str] = attrs.Factory(list)
    oauth_redirect_origins: list[str] = attrs.Factory(list)
    trusted_proxies: list[str] = attrs.Factory(list)
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024
    # Parts of a multipart upload (operations, map and the files); counted
    # before the MIME parser runs, since parsing costs per part.
    max_upload_parts: int = 10
    shutdown_grace_seconds: float = 10.0
    # A WebSocket must send connection_init within this (either subprotocol).
    websocket_init_timeout_seconds: float = 10.0
    # Who speaks WebSocket on /api/graphql: "chatto" (chatto/http/ws_server.py:
    # frames coalesced per socket) or "hypercorn" (one write per frame).
    websocket_server: str = "chatto"
    # A socket's frames not yet written; past either bound it is closed with
    # 1013 (slow consumer). One frame larger than the byte bound still goes.
    websocket_send_buffer_bytes: int = 4 * 1024 * 1024
    websocket_send_buffer_frames: int = 2048
    # Server processes sharing the port (SO_REUSEPORT) and one NATS; the
    # first one starts the others (`chatto run --workers N` overrides).
    workers: int = 1
    tls: TlsConfig = attrs.Factory(TlsConfig)


@attrs.frozen
class GraphqlConfig:
    """``[graphql]``: what one document may ask for; checked before any work
    that grows faster than the document (validation, execution)."""

    max_query_chars: int = 100_000
    max_tokens: int = 5_000
    # Fields, fragment spreads and inline fragments as written, all definitions.
    max_selections: int = 500
    max_aliases: int = 100
    max_depth: int = 12
    # Fields after expanding fragments, __typename and introspection included.
    max_complexity: int = 500
    max_response_bytes: int = 4 * 1024 * 1024


@attrs.frozen
class EmbeddedNatsConfig:
    """``[nats.embedded]``: the supervised child ``nats-server``."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 0
    store_dir: str = ""
    token: str = _secret()


@attrs.frozen
class NatsConfig:
    """``[nats]``: how to reach NATS; ``url`` empty means the embedded one."""

    url: str = ""
    token: str = _secret()
    user: str = ""
    password: str = _secret()
    creds_file: str = ""
    connect_timeout_seconds: float = 5.0
    request_timeout_seconds: float = 5.0
    replicas: int = 1
    embedded: EmbeddedNatsConfig = attrs.Factory(EmbeddedNatsConfig)


@attrs.frozen
class ActorsConfig:
    """``[actors]``: mailbox bounds and actor lifetimes."""

    mailbox_size: int = 256
    ask_timeout_seconds: float = 10.0
    idle_seconds: float = 300.0
    max_append_retries: int = 5


@attrs.frozen
class SnapshotsConfig:
    """``[snapshots]``: projector snapshots, so a start need not replay everything."""

    enabled: bool = True
    every_events: int = 100_000
    min_interval_seconds: float = 300.0
    write_on_shutdown: bool = True
    shutdown_timeout_seconds: float = 60.0
    # Room actors write a checkpoint once this many events were applied
    # since their last one (0: never).
    actor_events: int = 10_000


@attrs.frozen
class CacheConfig:
    """``[cache]``: what a process keeps of history besides its read models (issue #22).

    ``cold_pages``: history pages read back from the event stream that are
    kept (least recently used first out; 0: none). A page is at most 500
    sealed message views, typically 50 (~30 KB).
    ``hot_messages``: per room, the newest main-timeline messages (and the
    replies after the oldest of them; at most twice this many views) kept
    in memory; older ones are read back from the stream. ``hot_rooms``: how
    many rooms keep such a window (least recently posted to or read out
    first). Both at least 1.

    ``index_rooms``: rooms whose history index (timelines, id index, post
    columns: ~60-80 bytes per message) stays in memory, least recently used
    out first; others are read back from the snapshot store on demand. A
    changed index stays until it is stored (the next snapshot, or early
    when only changed ones are left beyond the bound); without snapshots
    nothing is evicted. At least 1. ``index_mb``: the same, by their
    estimated size in MiB (a room's index grows with its history, so a
    count alone does not bound memory); at least 1.

    Defaults for a 1 GB host: at most 500 x 2 x 100 = 100k views (~1.7 KB
    each with short messages: ~170 MB at worst, about half that typically),
    128 MiB of indexes (the whole index of ~1M messages), 256 pages (~8 MB).

    ``actor_hot_messages``: messages a room's write-side actor keeps whole
    (the newest and those changed last); it reads older ones back from the
    stream when a command aims at them (``actors/rooms/window.py``).
    """

    cold_pages: int = 256
    hot_messages: int = 100
    hot_rooms: int = 500
    index_rooms: int = 2000
    index_mb: int = 128
    actor_hot_messages: int = 500


@attrs.frozen
class KmsConfig:
    """``[kms]``: the master key that seals every KEK (never stored in NATS).

    ``local``: a 32-byte key in ``master_key_file`` (mode 0600, written by
    ``chatto init`` next to the config), or base64 in the environment
    variable ``CHATTO_KMS_MASTER_KEY`` (never in this file).

    ``pkcs11``: an AES-256 key that never leaves an HSM, found by
    ``pkcs11_key_label`` in the token ``pkcs11_token_label`` of the PKCS#11
    module ``pkcs11_module``. The PIN comes from ``pkcs11_pin_file`` (mode
    0600) or ``CHATTO_KMS_PKCS11_PIN``; it is deliberately not a key here.
    """

    provider: str = "local"
    master_key_file: str = "chatto.master.key"
    pkcs11_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    pkcs11_token_label: str = "chatto"
    pkcs11_key_label: str = "chatto-master"
    pkcs11_pin_file: str = ""
    # A user's message-body key gets a new epoch on their first post after
    # this many days (0: never); older epochs stay readable until shredded.
    dek_rotation_days: float = 30.0


@attrs.frozen
class AuthConfig:
    """``[auth]``: registration, password hashing and credential lifetimes."""

    # "open": anyone with an email address; "invite-only": only through an
    # invite link (and addresses in owners.emails); "closed": nobody.
    registration: str = "open"
    # Deprecated alias: true = "open", false = "closed" (resolved at load).
    registration_open: bool = attrs.field(default=True, metadata=DEPRECATED)
    # Whether the file or environment still sets the alias (a start-up warning).
    registration_alias_used: bool = attrs.field(default=False, metadata=INTERNAL)
    # bcrypt's library default; lower only for tests (4 is bcrypt's minimum).
    bcrypt_cost: int = 12
    bcrypt_threads: int = 2
    session_ttl_days: float = 90.0
    code_ttl_seconds: int = 900
    reset_ttl_seconds: int = 3600
    oauth_code_ttl_seconds: int = 300


@attrs.frozen
class SmtpConfig:
    """``[smtp]``: outgoing mail; disabled means mail goes to the console."""

    enabled: bool = False
    host: str = "localhost"
    port: int = 587
    username: str = ""
    password: str = _secret()
    from_address: str = "chatto@localhost"
    starttls: bool = True
    ssl: bool = False
    timeout_seconds: float = 10.0


@attrs.frozen
class LimitsConfig:
    """Token buckets as "CAPACITY/SECONDS" (refill the whole bucket in SECONDS)."""

    enabled: bool = True
    login_per_account: str = "10/300"
    login_per_ip: str = "50/300"
    register_per_ip: str = "20/3600"
    register_per_email: str = "5/3600"
    reset_per_ip: str = "20/3600"
    reset_per_email: str = "5/3600"
    code_attempts_per_ip: str = "30/900"
    # Invite links checked (sign-up steps carrying one, and /auth/invite).
    invite_per_ip: str = "30/900"
    # POST /auth/revoke-token needs no credential but the token itself.
    revoke_per_ip: str = "60/60"
    graphql_per_user: str = "1200/60"
    graphql_per_ip: str = "2400/60"
    websockets_per_user: str = "30/60"
    messages_per_user_room: str = "60/30"
    # Logins waiting for a bcrypt thread beyond this are refused at once.
    bcrypt_queue: int = 64


@attrs.frozen
class LoggingConfig:
    """``[logging]``: the root log level and the line format (text or json)."""

    level: str = "info"
    format: str = "text"


@attrs.frozen
class MetricsConfig:
    """``[metrics]``: Prometheus text at ``/metrics``; off unless enabled."""

    enabled: bool = False
    # Client addresses or CIDR ranges that may scrape without a token (the
    # address as webserver.trusted_proxies resolves it, not a proxy's own).
    allow: list[str] = attrs.Factory(lambda: ["127.0.0.1", "::1"])
    # A bearer token accepted from any address ("" = none).
    token: str = _secret()


@attrs.frozen
class PresenceConfig:
    """``[presence]``: online/away status, sent to users who share a room or DM."""

    enabled: bool = True


@attrs.frozen
class OwnersConfig:
    """``[owners]``: emails that become owners once verified."""

    emails: list[str] = attrs.Factory(list)


@attrs.frozen
class Config:
    """The whole configuration; ``base_dir`` is the config file's folder."""

    core: CoreConfig = attrs.Factory(CoreConfig)
    webserver: WebserverConfig = attrs.Factory(WebserverConfig)
    graphql: GraphqlConfig = attrs.Factory(GraphqlConfig)
    nats: NatsConfig = attrs.Factory(NatsConfig)
    actors: ActorsConfig = attrs.Factory(ActorsConfig)
    snapshots: SnapshotsConfig = attrs.Factory(SnapshotsConfig)
    cache: CacheConfig = attrs.Factory(CacheConfig)
    kms: KmsConfig = attrs.Factory(KmsConfig)
    auth: AuthConfig = attrs.Factory(AuthConfig)
    smtp: SmtpConfig = attrs.Factory(SmtpConfig)
    limits: LimitsConfig = attrs.Factory(LimitsConfig)
    logging: LoggingConfig = attrs.Factory(LoggingConfig)
    metrics: MetricsConfig = attrs.Factory(MetricsConfig)
    owners: OwnersConfig = attrs.Factory(OwnersConfig)
    presence: PresenceConfig = attrs.Factory(PresenceConfig)
    base_dir: Path = attrs.field(default=Path("."), metadata=INTERNAL)

    @property
    def data_dir(self) -> Path:
        """``core.data_dir`` resolved against the config file's folder."""
        return (self.base_dir / self.core.data_dir).resolve()

    @property
    def nats_store_dir(self) -> Path:
        """The embedded JetStream store: ``<data_dir>/nats`` unless set."""
        store = self.nats.embedded.store_dir
        return (self.base_dir / store).resolve() if store else self.data_dir / "nats"

    @property
    def master_key_path(self) -> Path:
        """``kms.master_key_file`` resolved against the config file's folder."""
        return (self.base_dir / self.kms.master_key_file).resolve()

    @property
    def pkcs11_pin_path(self) -> Path | None:
        """``kms.pkcs11_pin_file`` resolved against the config file's folder (None: unset)."""
        pin = self.kms.pkcs11_pin_file
        return (self.base_dir / pin).resolve() if pin else None

    @property
    def tls_cache_dir(self) -> Path:
        """Certificates and the ACME account key: ``<data_dir>/tls`` unless set."""
        cache = self.webserver.tls.cache_dir
        return (self.base_dir / cache).resolve() if cache else self.data_dir / "tls"

    @property
    def tls_ca_bundle(self) -> Path | None:
        """The CA file trusted for the ACME server's HTTPS (None: the system's)."""
        bundle = self.webserver.tls.acme_ca_bundle
        return (self.base_dir / bundle).resolve() if bundle else None

    @property
    def cookies_secure(self) -> bool:
        """Secure cookies when the public URL is https or Chatto terminates TLS."""
        return self.webserver.url.startswith("https://") or self.webserver.tls.enabled

    def redacted(self) -> dict[str, Any]:
        """The config as nested dicts with every secret replaced."""
        return _redact(self)


# --- schema walking -----------------------------------------------------------
def field_types(cls: type) -> dict[str, Any]:
    """Field name -> resolved annotation (the module uses string annotations)."""
    return typing.get_type_hints(cls)


def is_section(tp: Any) -> bool:
    """Whether an annotation is a nested section rather than a leaf key."""
    return isinstance(tp, type) and attrs.has(tp)


def schema_fields(cls: type) -> list[attrs.Attribute[Any]]:
    """The fields of ``cls`` that are current config keys or sections."""
    return [f for f in input_fields(cls) if not f.metadata.get("deprecated")]


def input_fields(cls: type) -> list[attrs.Attribute[Any]]:
    """The fields a config file may set: current keys and deprecated aliases."""
    return [f for f in attrs.fields(cls) if not f.metadata.get("internal")]


def env_name(dotted: str) -> str:
    """``nats.embedded.enabled`` -> ``CHATTO_NATS_EMBEDDED_ENABLED``."""
    return "CHATTO_" + dotted.replace(".", "_").upper()


def all_keys(cls: type = Config, prefix: str = "") -> dict[str, Any]:
    """Every leaf key as dotted name -> type, in schema order."""
    keys: dict[str, Any] = {}
    hints = field_types(cls)
    for f in schema_fields(cls):
        tp, name = hints[f.name], prefix + f.name
        if is_section(tp):
            keys.update(all_keys(tp, name + "."))
        else:
            keys[name] = tp
    return keys


def type_name(tp: Any) -> str:
    """The expected type in words, for error messages."""
    if typing.get_origin(tp) is list:
        return "a list of strings"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    return names[tp]


def _redact(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in schema_fields(type(obj)):
        value = getattr(obj, f.name)
        if attrs.has(type(value)):
            out[f.name] = _redact(value)
        elif f.metadata.get("secret"):
            # Whether a secret is set is useful to an operator; its value never is.
            out[f.name] = REDACTED if value else ""
        else:
            out[f.name] = list(value) if isinstance(value, list) else value
    return out
