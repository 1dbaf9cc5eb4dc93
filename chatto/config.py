"""Configuration: ``chatto.toml`` plus ``CHATTO_<SECTION>_<KEY>`` overrides.

The schema is the attrs classes below; each field's type and metadata drive
parsing, validation, environment names and redaction, so adding a key is
one line. Errors name the dotted key (or the environment variable) and
never include the value of a secret.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from chatto.errors import ConfigError

SECRET = {"secret": True}
MIN_SECRET = 32


def _secret(default: str = "") -> Any:
    return attrs.field(default=default, metadata=SECRET)


@attrs.frozen
class CoreConfig:
    secret_key: str = _secret()
    data_dir: str = "./data"
    server_name: str = "Chatto"


@attrs.frozen
class WebserverConfig:
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
    shutdown_grace_seconds: float = 10.0


@attrs.frozen
class EmbeddedNatsConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 0
    store_dir: str = ""
    token: str = _secret()


@attrs.frozen
class NatsConfig:
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
    mailbox_size: int = 256
    ask_timeout_seconds: float = 10.0
    idle_seconds: float = 300.0
    max_append_retries: int = 5


@attrs.frozen
class AuthConfig:
    registration_open: bool = True
    # bcrypt's library default; lower only for tests (4 is bcrypt's minimum).
    bcrypt_cost: int = 12
    bcrypt_threads: int = 2
    session_ttl_days: float = 90.0
    code_ttl_seconds: int = 900
    reset_ttl_seconds: int = 3600


@attrs.frozen
class SmtpConfig:
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
    graphql_per_user: str = "1200/60"
    graphql_per_ip: str = "2400/60"
    websockets_per_user: str = "30/60"
    messages_per_user_room: str = "60/30"
    # Logins waiting for a bcrypt thread beyond this are refused at once.
    bcrypt_queue: int = 64


@attrs.frozen
class LoggingConfig:
    level: str = "info"


@attrs.frozen
class OwnersConfig:
    emails: list[str] = attrs.Factory(list)


@attrs.frozen
class Config:
    """The whole configuration; ``base_dir`` is the config file's folder."""

    core: CoreConfig = attrs.Factory(CoreConfig)
    webserver: WebserverConfig = attrs.Factory(WebserverConfig)
    nats: NatsConfig = attrs.Factory(NatsConfig)
    actors: ActorsConfig = attrs.Factory(ActorsConfig)
    auth: AuthConfig = attrs.Factory(AuthConfig)
    smtp: SmtpConfig = attrs.Factory(SmtpConfig)
    limits: LimitsConfig = attrs.Factory(LimitsConfig)
    logging: LoggingConfig = attrs.Factory(LoggingConfig)
    owners: OwnersConfig = attrs.Factory(OwnersConfig)
    base_dir: Path = attrs.field(default=Path("."), metadata={"internal": True})

    @property
    def data_dir(self) -> Path:
        return (self.base_dir / self.core.data_dir).resolve()

    @property
    def nats_store_dir(self) -> Path:
        store = self.nats.embedded.store_dir
        return (self.base_dir / store).resolve() if store else self.data_dir / "nats"

    def redacted(self) -> dict[str, Any]:
        """The config as nested dicts with every secret replaced."""
        return _redact(self)


# --- schema walking -----------------------------------------------------------
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and attrs.has(tp)


def _fields(cls: type) -> list[attrs.Attribute[Any]]:
    return [f for f in attrs.fields(cls) if not f.metadata.get("internal")]


def _redact(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in _fields(type(obj)):
        value = getattr(obj, f.name)
        if attrs.has(type(value)):
            out[f.name] = _redact(value)
        elif f.metadata.get("secret"):
            out[f.name] = "<redacted>" if value else ""
        else:
            out[f.name] = list(value) if isinstance(value, list) else value
    return out


def env_name(dotted: str) -> str:
    """``nats.embedded.enabled`` -> ``CHATTO_NATS_EMBEDDED_ENABLED``."""
    return "CHATTO_" + dotted.replace(".", "_").upper()


def all_keys(cls: type = Config, prefix: str = "") -> dict[str, Any]:
    """Every leaf key as dotted name -> type."""
    keys: dict[str, Any] = {}
    hints = _hints(cls)
    for f in _fields(cls):
        tp = hints[f.name]
        name = prefix + f.name
        if _is_section(tp):
            keys.update(all_keys(tp, name + "."))
        else:
            keys[name] = tp
    return keys


# --- value parsing -----------------------------------------------------------
def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is list:
        return "a list of strings"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}[tp]


def _check_type(key: str, value: Any, tp: Any) -> Any:
    ok = False
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    elif typing.get_origin(tp) is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    if not ok:
        raise ConfigError(f"config key '{key}' must be {_type_name(tp)}")
    return value


def _from_env(var: str, raw: str, tp: Any) -> Any:
    try:
        if tp is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            return int(raw)
        if tp is float:
            return float(raw)
        if typing.get_origin(tp) is list:
            return [p.strip() for p in raw.split(",") if p.strip()]
        return raw
    except ValueError:
        raise ConfigError(f"environment variable {var} must be {_type_name(tp)}") from None


# --- loading -----------------------------------------------------------------
def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file not found: {path} (run `chatto init -c {path}` to create one)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"malformed TOML in {path}: {exc}") from None


def _unknown(key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint}")


def _build(cls: type, doc: Mapping[str, Any], prefix: str, env: Mapping[str, str]) -> Any:
    hints = _hints(cls)
    names = {f.name: f for f in _fields(cls)}
    for key in doc:
        if key not in names:
            raise _unknown(prefix + key, [prefix + n for n in names] + list(all_keys()))
    kwargs: dict[str, Any] = {}
    for name in names:
        tp, dotted = hints[name], prefix + name
        if _is_section(tp):
            sub = doc.get(name, {})
            if not isinstance(sub, dict):
                raise ConfigError(f"config key '{dotted}' must be a [{dotted}] section")
            kwargs[name] = _build(tp, sub, dotted + ".", env)
            continue
        var = env_name(dotted)
        if var in env:
            kwargs[name] = _from_env(var, env[var], tp)
        elif name in doc:
            kwargs[name] = _check_type(dotted, doc[name], tp)
    return cls(**kwargs)


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, validate; ``ConfigError`` on any problem."""
    env = os.environ if environ is None else environ
    doc = _read_toml(path)
    built = _build(Config, doc, "", env)
    config: Config = attrs.evolve(built, base_dir=path.resolve().parent)
    validate(config)
    return config


# --- validation --------------------------------------------------------------
def _require_secret(key: str, value: str, optional: bool = False) -> None:
    if not value:
        if optional:
            return
        raise ConfigError(
            f"missing required secret '{key}' (run `chatto init` to generate one, "
            f"or set {env_name(key)})"
        )
    if len(value) < MIN_SECRET:
        raise ConfigError(f"secret '{key}' is too short (at least {MIN_SECRET} characters)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _range(key: str, value: float, low: float, high: float | None = None) -> None:
    if value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ConfigError(f"config key '{key}' must be {bound}")


def parse_rate(key: str, value: str) -> tuple[int, float]:
    """ "CAPACITY/SECONDS" -> (capacity, seconds)."""
    try:
        cap, _, secs = value.partition("/")
        capacity, seconds = int(cap), float(secs)
    except ValueError:
        raise ConfigError(f"config key '{key}' must look like 10/300 (count/seconds)") from None
    if capacity < 1 or seconds <= 0:
        raise ConfigError(f"config key '{key}' must have a positive count and period")
    return capacity, seconds


def validate(config: Config) -> None:
    """Cross-field and range checks."""
    c, w, n, a = config.core, config.webserver, config.nats, config.actors
    _require_secret("core.secret_key", c.secret_key)
    _require_secret("webserver.cookie_signing_secret", w.cookie_signing_secret)
    _require_secret("webserver.cookie_encryption_secret", w.cookie_encryption_secret, True)
    _require_secret("webserver.asset_signing_secret", w.asset_signing_secret)
    _range("webserver.port", w.port, 0, 65535)
    _range("webserver.max_body_bytes", w.max_body_bytes, 1)
    _range("webserver.shutdown_grace_seconds", w.shutdown_grace_seconds, 0.001)
    if not w.url.startswith(("http://", "https://")):
        raise ConfigError("config key 'webserver.url' must start with http:// or https://")
    _range("nats.replicas", n.replicas, 1, 5)
    _range("nats.connect_timeout_seconds", n.connect_timeout_seconds, 0.001)
    _range("nats.request_timeout_seconds", n.request_timeout_seconds, 0.001)
    if n.embedded.enabled:
        if n.url:
            raise ConfigError(
                "config key 'nats.embedded.enabled' is true but nats.url is set: "
                "set enabled = false to use an external NATS"
            )
        if not n.embedded.token:
            raise ConfigError(
                "missing required secret 'nats.embedded.token' (run `chatto init` "
                "to generate one, or set CHATTO_NATS_EMBEDDED_TOKEN)"
            )
        if len(n.embedded.token) < 16:
            raise ConfigError("secret 'nats.embedded.token' is too short (at least 16 characters)")
        if not _is_loopback(n.embedded.host):
            raise ConfigError("config key 'nats.embedded.host' must be a loopback address")
        _range("nats.embedded.port", n.embedded.port, 0, 65535)
    elif not n.url:
        raise ConfigError("config key 'nats.url' is required when nats.embedded.enabled = false")
    _range("actors.mailbox_size", a.mailbox_size, 1)
    _range("actors.ask_timeout_seconds", a.ask_timeout_seconds, 0.001)
    _range("actors.idle_seconds", a.idle_seconds, 0.001)
    _range("actors.max_append_retries", a.max_append_retries, 1)
    au = config.auth
    _range("auth.bcrypt_cost", au.bcrypt_cost, 4, 31)
    _range("auth.bcrypt_threads", au.bcrypt_threads, 1, 64)
    _range("auth.session_ttl_days", au.session_ttl_days, 0.001)
    _range("auth.code_ttl_seconds", au.code_ttl_seconds, 1)
    _range("auth.reset_ttl_seconds", au.reset_ttl_seconds, 1)
    if config.smtp.enabled:
        _range("smtp.port", config.smtp.port, 1, 65535)
        if config.smtp.ssl and config.smtp.starttls:
            raise ConfigError("config keys 'smtp.ssl' and 'smtp.starttls' cannot both be true")
    for f in attrs.fields(LimitsConfig):
        if f.type in (str, "str"):
            parse_rate(f"limits.{f.name}", getattr(config.limits, f.name))
    _range("limits.bcrypt_queue", config.limits.bcrypt_queue, 1)
    for email in config.owners.emails:
        local, at, domain = email.strip().rpartition("@")
        if not at or not local or "." not in domain:
            raise ConfigError("config key 'owners.emails' must hold email addresses")
    if config.logging.level not in ("debug", "info", "warning", "error"):
        raise ConfigError("config key 'logging.level' must be debug, info, warning or error")
