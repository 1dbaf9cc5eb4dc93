"""Configuration loading: ``chatto.toml`` plus ``CHATTO_<SECTION>_<KEY>`` overrides.

This module owns reading the file, applying environment overrides, type
checks and validation; the schema itself lives in ``chatto.config_schema``
and is re-exported here so callers import config types from one place.

Every problem is a one-line ``ConfigError`` naming the dotted key (or the
environment variable). Messages never include a configured value, so a
secret typed into the wrong key cannot leak into logs.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from chatto.config_schema import (
    REGISTRATION_MODES,
    ActorsConfig,
    AuthConfig,
    CacheConfig,
    Config,
    CoreConfig,
    EmbeddedNatsConfig,
    GraphqlConfig,
    KmsConfig,
    LimitsConfig,
    LoggingConfig,
    MetricsConfig,
    NatsConfig,
    OwnersConfig,
    PresenceConfig,
    SmtpConfig,
    SnapshotsConfig,
    TlsConfig,
    WebserverConfig,
    all_keys,
    env_name,
    field_types,
    input_fields,
    is_section,
    type_name,
)
from chatto.errors import ConfigError

__all__ = [
    "MIN_SECRET",
    "ActorsConfig",
    "AuthConfig",
    "CacheConfig",
    "Config",
    "CoreConfig",
    "EmbeddedNatsConfig",
    "GraphqlConfig",
    "KmsConfig",
    "LimitsConfig",
    "LoggingConfig",
    "MetricsConfig",
    "NatsConfig",
    "OwnersConfig",
    "PresenceConfig",
    "SmtpConfig",
    "SnapshotsConfig",
    "TlsConfig",
    "WebserverConfig",
    "all_keys",
    "env_name",
    "load_config",
    "parse_rate",
    "validate",
]

MIN_SECRET = 32
KMS_PROVIDERS = ("local", "pkcs11")
# The NATS token only guards a loopback listener, so a shorter one is allowed.
MIN_NATS_TOKEN = 16
LOG_LEVELS = ("debug", "info", "warning", "error")
ENV_TRUE = frozenset({"true", "1", "yes"})
ENV_FALSE = frozenset({"false", "0", "no"})


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, validate; ``ConfigError`` on any problem."""
    env = os.environ if environ is None else environ
    doc = _read_toml(path)
    built = _build(Config, doc, "", env)
    config: Config = attrs.evolve(built, base_dir=path.resolve().parent)
    config = _resolve_registration(config, doc, env)
    validate(config)
    return config


def _resolve_registration(config: Config, doc: Mapping[str, Any], env: Mapping[str, str]) -> Config:
    """Map the deprecated ``auth.registration_open`` onto ``auth.registration``.

    Only keys actually given count (the defaults agree with each other): the
    old key alone decides; both given must agree, or the file is ambiguous.
    """
    section = doc.get("auth", {})
    given = section if isinstance(section, dict) else {}

    def present(key: str) -> bool:
        return key in given or env_name("auth." + key) in env

    au = config.auth
    if present("registration_open"):
        implied = "open" if au.registration_open else "closed"
        if present("registration") and au.registration != implied:
            raise ConfigError(
                "config keys 'auth.registration' and 'auth.registration_open' (deprecated) "
                "disagree; remove 'auth.registration_open'"
            )
        au = attrs.evolve(au, registration=implied, registration_alias_used=True)
    au = attrs.evolve(au, registration_open=au.registration == "open")
    return attrs.evolve(config, auth=au)


# --- reading -------------------------------------------------------------------
def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file not found: {path} (run `chatto init -c {path}` to create one)"
        ) from None
    except UnicodeDecodeError:
        # The decoder's message quotes the offending bytes, which may be a secret.
        raise ConfigError(f"config file {path} is not valid UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib reports only the problem and its line/column, never the text.
        raise ConfigError(f"malformed TOML in {path}: {exc}") from None


def _unknown(key: str, candidates: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, candidates, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint}")


def _build(cls: type, doc: Mapping[str, Any], prefix: str, env: Mapping[str, str]) -> Any:
    """One section from its TOML table, env variables winning over the file."""
    hints = field_types(cls)
    names = [f.name for f in input_fields(cls)]
    for key in doc:
        if key not in names:
            raise _unknown(prefix + key, [prefix + n for n in names] + list(all_keys()))
    kwargs: dict[str, Any] = {}
    for name in names:
        tp, dotted = hints[name], prefix + name
        if is_section(tp):
            sub = doc.get(name, {})
            if not isinstance(sub, dict):
                raise ConfigError(f"config key '{dotted}' must be a [{dotted}] section")
            kwargs[name] = _build(tp, sub, dotted + ".", env)
            continue
        var = env_name(dotted)
        if var in env:
            kwargs[name] = _from_env(var, env[var], tp)
        elif name in doc:
            kwargs[name] = _from_toml(dotted, doc[name], tp)
    return cls(**kwargs)


# --- values --------------------------------------------------------------------
def _from_toml(key: str, value: Any, tp: Any) -> Any:
    """``value`` as ``tp``; the error names the key, never the value."""
    ok = False
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        # bool is an int subclass; `port = true` is a mistake, not port 1.
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    elif typing.get_origin(tp) is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    if not ok:
        raise ConfigError(f"config key '{key}' must be {type_name(tp)}")
    return value


def _from_env(var: str, raw: str, tp: Any) -> Any:
    """An environment string coerced to ``tp``; the error names the variable."""
    try:
        return _coerce_env(raw, tp)
    except ValueError:
        raise ConfigError(f"environment variable {var} must be {type_name(tp)}") from None


def _coerce_env(raw: str, tp: Any) -> Any:
    if tp is bool:
        word = raw.strip().lower()
        if word not in ENV_TRUE | ENV_FALSE:
            raise ValueError
        return word in ENV_TRUE
    if tp is int:
        return int(raw)
    if tp is float:
        number = float(raw)
        if not math.isfinite(number):
            raise ValueError
        return number
    if typing.get_origin(tp) is list:
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


# --- validation ----------------------------------------------------------------
def validate(config: Config) -> None:
    """Cross-field and range checks on an already type-checked config."""
    _validate_core(config.core)
    _validate_kms(config.kms)
    _validate_webserver(config.webserver)
    _validate_tls(config.webserver.tls, config.base_dir)
    for name in field_types(GraphqlConfig):
        _at_least(f"graphql.{name}", getattr(config.graphql, name), 1)
    _validate_nats(config.nats)
    _validate_actors(config.actors)
    _at_least("snapshots.every_events", config.snapshots.every_events, 1)
    _positive("snapshots.min_interval_seconds", config.snapshots.min_interval_seconds)
    _positive("snapshots.shutdown_timeout_seconds", config.snapshots.shutdown_timeout_seconds)
    _at_least("snapshots.actor_events", config.snapshots.actor_events, 0)
    _at_least("cache.cold_pages", config.cache.cold_pages, 0)
    _at_least("cache.hot_messages", config.cache.hot_messages, 1)
    _at_least("cache.hot_rooms", config.cache.hot_rooms, 1)
    _at_least("cache.index_rooms", config.cache.index_rooms, 1)
    _at_least("cache.index_mb", config.cache.index_mb, 1)
    _at_least("cache.actor_hot_messages", config.cache.actor_hot_messages, 8)
    _validate_auth(config.auth)
    _validate_smtp(config.smtp)
    _validate_limits(config.limits)
    _validate_owners(config.owners)
    _validate_metrics(config.metrics)
    if config.logging.level not in LOG_LEVELS:
        raise ConfigError("config key 'logging.level' must be debug, info, warning or error")
    if config.logging.format not in ("text", "json"):
        raise ConfigError("config key 'logging.format' must be text or json")


def _validate_core(c: CoreConfig) -> None:
    _require_secret("core.secret_key", c.secret_key)


def _validate_kms(k: KmsConfig) -> None:
    if k.provider not in KMS_PROVIDERS:
        raise ConfigError(f"config key 'kms.provider' must be one of {', '.join(KMS_PROVIDERS)}")
    if not k.master_key_file:
        raise ConfigError("config key 'kms.master_key_file' must not be empty")
    if k.dek_rotation_days < 0:
        raise ConfigError("config key 'kms.dek_rotation_days' must be >= 0")
    if k.provider != "pkcs11":
        return
    # The PIN (file or CHATTO_KMS_PKCS11_PIN) is read when the key is opened:
    # a missing one is a one-line start-up error there.
    for name in ("pkcs11_module", "pkcs11_token_label", "pkcs11_key_label"):
        if not getattr(k, name).strip():
            raise ConfigError(f"config key 'kms.{name}' must not be empty with provider pkcs11")
    if len(k.pkcs11_token_label.encode()) > 32:  # CK_TOKEN_INFO's label field
        raise ConfigError("config key 'kms.pkcs11_token_label' must be at most 32 bytes")


def _validate_webserver(w: WebserverConfig) -> None:
    _require_secret("webserver.cookie_signing_secret", w.cookie_signing_secret)
    _require_secret("webserver.cookie_encryption_secret", w.cookie_encryption_secret, optional=True)
    _require_secret("webserver.asset_signing_secret", w.asset_signing_secret)
    _between("webserver.port", w.port, 0, 65535)
    if not w.url.startswith(("http://", "https://")):
        raise ConfigError("config key 'webserver.url' must start with http:// or https://")
    _positive("webserver.max_body_bytes", w.max_body_bytes)
    _positive("webserver.max_upload_bytes", w.max_upload_bytes)
    _at_least("webserver.max_upload_parts", w.max_upload_parts, 3)
    _positive("webserver.shutdown_grace_seconds", w.shutdown_grace_seconds)
    _positive("webserver.websocket_init_timeout_seconds", w.websocket_init_timeout_seconds)
    if w.websocket_server not in ("chatto", "hypercorn"):
        raise ConfigError("config key 'webserver.websocket_server' must be chatto or hypercorn")
    _positive("webserver.websocket_send_buffer_bytes", w.websocket_send_buffer_bytes)
    _positive("webserver.websocket_send_buffer_frames", w.websocket_send_buffer_frames)
    _between("webserver.workers", w.workers, 1, 64)
    for origin in w.oauth_redirect_origins:
        if origin != "*" and not origin.startswith("https://"):
            raise ConfigError(
                "config key 'webserver.oauth_redirect_origins' takes https origins or *"
            )


def _validate_tls(t: TlsConfig, base_dir: Path) -> None:
    if not t.enabled:
        return
    if not _is_domain(t.domain):
        raise ConfigError(
            "config key 'webserver.tls.domain' must be a DNS name (e.g. chat.example.com) "
            "when webserver.tls.enabled = true"
        )
    if not t.acme_directory.startswith("https://"):
        raise ConfigError("config key 'webserver.tls.acme_directory' must be an https:// URL")
    if t.email and "@" not in t.email:
        raise ConfigError("config key 'webserver.tls.email' must be an email address")
    _between("webserver.tls.http_port", t.http_port, 0, 65535)
    _positive("webserver.tls.renew_before_days", t.renew_before_days)
    _positive("webserver.tls.retry_seconds", t.retry_seconds)
    if t.acme_ca_bundle and not (base_dir / t.acme_ca_bundle).is_file():
        raise ConfigError("config key 'webserver.tls.acme_ca_bundle' must name a readable file")


def _is_domain(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return 0 < len(name) <= 253 and all(
        0 < len(label) <= 63
        and label.replace("-", "").isalnum()
        and label.isascii()
        and not label.startswith("-")
        and not label.endswith("-")
        for label in labels
    )


def _validate_nats(n: NatsConfig) -> None:
    _between("nats.replicas", n.replicas, 1, 5)
    _positive("nats.connect_timeout_seconds", n.connect_timeout_seconds)
    _positive("nats.request_timeout_seconds", n.request_timeout_seconds)
    e = n.embedded
    if not e.enabled:
        if not n.url:
            raise ConfigError(
                "config key 'nats.url' is required when nats.embedded.enabled = false"
            )
        return
    if n.url:
        raise ConfigError(
            "config key 'nats.embedded.enabled' is true but nats.url is set: "
            "set enabled = false to use an external NATS"
        )
    _require_secret("nats.embedded.token", e.token, minimum=MIN_NATS_TOKEN)
    # The embedded server is reachable with a token only; keep it off the network.
    if not _is_loopback(e.host):
        raise ConfigError(
            "config key 'nats.embedded.host' must be a loopback address "
            "(127.x.x.x, ::1 or localhost)"
        )
    _between("nats.embedded.port", e.port, 0, 65535)


def _validate_actors(a: ActorsConfig) -> None:
    _at_least("actors.mailbox_size", a.mailbox_size, 1)
    _positive("actors.ask_timeout_seconds", a.ask_timeout_seconds)
    _positive("actors.idle_seconds", a.idle_seconds)
    _at_least("actors.max_append_retries", a.max_append_retries, 1)


def _validate_auth(au: AuthConfig) -> None:
    if au.registration not in REGISTRATION_MODES:
        raise ConfigError("config key 'auth.registration' must be open, invite-only or closed")
    _between("auth.bcrypt_cost", au.bcrypt_cost, 4, 31)
    _between("auth.bcrypt_threads", au.bcrypt_threads, 1, 64)
    _positive("auth.session_ttl_days", au.session_ttl_days)
    _at_least("auth.code_ttl_seconds", au.code_ttl_seconds, 1)
    _at_least("auth.reset_ttl_seconds", au.reset_ttl_seconds, 1)
    _at_least("auth.oauth_code_ttl_seconds", au.oauth_code_ttl_seconds, 1)


def _validate_smtp(s: SmtpConfig) -> None:
    if not s.enabled:
        return
    _between("smtp.port", s.port, 1, 65535)
    _positive("smtp.timeout_seconds", s.timeout_seconds)
    if s.ssl and s.starttls:
        raise ConfigError("config keys 'smtp.ssl' and 'smtp.starttls' cannot both be true")


def _validate_limits(limits: LimitsConfig) -> None:
    for name, tp in field_types(LimitsConfig).items():
        if tp is str:
            parse_rate(f"limits.{name}", getattr(limits, name))
    _at_least("limits.bcrypt_queue", limits.bcrypt_queue, 1)


def _validate_owners(o: OwnersConfig) -> None:
    for email in o.emails:
        local, at, domain = email.strip().rpartition("@")
        if not at or not local or "." not in domain:
            raise ConfigError("config key 'owners.emails' must hold email addresses")


def _validate_metrics(m: MetricsConfig) -> None:
    for entry in m.allow:
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                "config key 'metrics.allow' must hold IP addresses or CIDR ranges"
            ) from None
    _require_secret("metrics.token", m.token, optional=True)


def parse_rate(key: str, value: str) -> tuple[int, float]:
    """ "CAPACITY/SECONDS" -> (capacity, seconds); ``ConfigError`` naming ``key``."""
    try:
        cap, _, secs = value.partition("/")
        capacity, seconds = int(cap), float(secs)
    except ValueError:
        raise ConfigError(f"config key '{key}' must look like 10/300 (count/seconds)") from None
    if capacity < 1 or not seconds > 0 or not math.isfinite(seconds):
        raise ConfigError(f"config key '{key}' must have a positive count and period")
    return capacity, seconds


def _require_secret(
    key: str, value: str, *, minimum: int = MIN_SECRET, optional: bool = False
) -> None:
    if not value:
        if optional:
            return
        raise ConfigError(
            f"missing required secret '{key}' (run `chatto init` to generate one, "
            f"or set {env_name(key)})"
        )
    if len(value) < minimum:
        raise ConfigError(f"secret '{key}' is too short (at least {minimum} characters)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _positive(key: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"config key '{key}' must be greater than 0")


def _at_least(key: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"config key '{key}' must be at least {low}")


def _between(key: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(f"config key '{key}' must be between {low} and {high}")
