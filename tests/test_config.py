"""Configuration: `chatto init`, loading, environment overrides, validation, redaction."""

from __future__ import annotations

import stat
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from chatto.config import Config, all_keys, env_name, load_config
from chatto.errors import ConfigError
from chatto.initcmd import SECRET_BYTES, write_initial_config

ROOT = Path(__file__).resolve().parents[1]
# Looks like a real secret so a leak would be unmistakable in a message.
LEAK = "Sup3rPrivate-Leak-Canary"


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "conf" / "chatto.toml"
    write_initial_config(path)
    return path


def set_value(path: Path, dotted: str, literal: str) -> None:
    """Replace one key's line inside its section with ``key = literal``."""
    section, _, key = dotted.rpartition(".")
    lines = path.read_text().splitlines()
    start = lines.index(f"[{section}]")
    for i in range(start + 1, len(lines)):
        assert not lines[i].startswith("["), f"{dotted} not in the file"
        if lines[i].startswith(f"{key} = "):
            lines[i] = f"{key} = {literal}"
            break
    path.write_text("\n".join(lines) + "\n")


def add_line(path: Path, section: str, line: str) -> None:
    text = path.read_text()
    assert f"[{section}]\n" in text
    path.write_text(text.replace(f"[{section}]\n", f"[{section}]\n{line}\n", 1))


def fails(path: Path, env: Mapping[str, str] | None = None, match: str | None = None) -> str:
    """Loading must fail with a one-line ConfigError; returns its message."""
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path, environ=env or {})
    message = info.value.message
    assert message and "\n" not in message
    return message


def lookup(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def secret_keys() -> list[str]:
    """Dotted names of the fields marked secret in the schema metadata."""

    def walk(cls: type, prefix: str) -> list[str]:
        out: list[str] = []
        for f in attrs.fields(cls):
            if isinstance(f.type, type) and attrs.has(f.type):
                out += walk(attrs.resolve_types(f.type), f"{prefix}{f.name}.")
            elif f.metadata.get("secret"):
                out.append(prefix + f.name)
        return out

    return walk(attrs.resolve_types(Config), "")


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


# --- chatto init -------------------------------------------------------------
def test_init_writes_a_private_loadable_file_with_distinct_secrets(tmp_path: Path) -> None:
    path = tmp_path / "new" / "nested" / "chatto.toml"
    write_initial_config(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = load_config(path, environ={})
    values = [lookup(config, key) for key in SECRET_BYTES]
    assert len(set(values)) == len(SECRET_BYTES)
    assert all(len(v) >= 32 for v in values)
    assert config.nats.embedded.enabled is True
    assert config.core.data_dir == "./data"
    assert config.data_dir == (path.parent / "data").resolve()
    assert config.nats_store_dir == config.data_dir / "nats"


def test_init_secrets_differ_between_runs(tmp_path: Path) -> None:
    write_initial_config(tmp_path / "a.toml")
    write_initial_config(tmp_path / "b.toml")
    a = load_config(tmp_path / "a.toml", environ={})
    b = load_config(tmp_path / "b.toml", environ={})
    assert all(lookup(a, key) != lookup(b, key) for key in SECRET_BYTES)


def test_init_writes_every_key_at_its_default(cfg: Path) -> None:
    written = flatten(tomllib.loads(cfg.read_text()))
    assert list(written) == list(all_keys())
    defaults = Config()
    for key, value in written.items():
        if key not in SECRET_BYTES:
            assert value == lookup(defaults, key), key


def test_init_refuses_to_overwrite_and_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "chatto.toml"
    path.write_text("# hand-edited, keep me\n")
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="refusing to overwrite existing config file"):
        write_initial_config(path)
    assert path.read_text() == "# hand-edited, keep me\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# --- environment -------------------------------------------------------------
def test_environment_overrides_win_over_the_file(cfg: Path) -> None:
    env = {
        "CHATTO_WEBSERVER_PORT": "8080",
        "CHATTO_NATS_EMBEDDED_ENABLED": "no",
        "CHATTO_NATS_URL": "nats://a:4222,nats://b:4222",
        "CHATTO_OWNERS_EMAILS": "a@example.com, b@example.com",
        "CHATTO_ACTORS_IDLE_SECONDS": "1.5",
        "CHATTO_NATS_EMBEDDED_PORT": "4333",
    }
    config = load_config(cfg, environ=env)
    assert config.webserver.port == 8080
    assert config.nats.embedded.enabled is False
    assert config.nats.embedded.port == 4333
    assert config.nats.url == "nats://a:4222,nats://b:4222"
    assert config.owners.emails == ["a@example.com", "b@example.com"]
    assert config.actors.idle_seconds == 1.5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("Yes", True),
        ("false", False),
        ("0", False),
        ("NO", False),
    ],
)
def test_environment_booleans(cfg: Path, raw: str, expected: bool) -> None:
    config = load_config(cfg, environ={"CHATTO_SMTP_ENABLED": raw, "CHATTO_SMTP_SSL": "0"})
    assert config.smtp.enabled is expected


def test_empty_environment_list_is_an_empty_list(cfg: Path) -> None:
    set_value(cfg, "webserver.allowed_origins", '["https://a.example"]')
    assert load_config(cfg, environ={}).webserver.allowed_origins == ["https://a.example"]
    config = load_config(cfg, environ={"CHATTO_WEBSERVER_ALLOWED_ORIGINS": ""})
    assert config.webserver.allowed_origins == []


@pytest.mark.parametrize(
    ("var", "raw", "expected"),
    [
        ("CHATTO_WEBSERVER_PORT", "eighty", "an integer"),
        ("CHATTO_SMTP_ENABLED", "maybe", "a boolean"),
        ("CHATTO_NATS_EMBEDDED_ENABLED", "on", "a boolean"),
        ("CHATTO_ACTORS_IDLE_SECONDS", "soon", "a number"),
        ("CHATTO_ACTORS_IDLE_SECONDS", "nan", "a number"),
    ],
)
def test_bad_environment_value_names_the_variable(
    cfg: Path, var: str, raw: str, expected: str
) -> None:
    # An exact message: the offending value is not echoed.
    assert fails(cfg, {var: raw}) == f"environment variable {var} must be {expected}"


def test_every_key_has_a_distinct_environment_name() -> None:
    names = [env_name(key) for key in all_keys()]
    assert len(set(names)) == len(names)
    assert env_name("nats.embedded.enabled") == "CHATTO_NATS_EMBEDDED_ENABLED"
    assert env_name("webserver.cookie_signing_secret") == "CHATTO_WEBSERVER_COOKIE_SIGNING_SECRET"


# --- file problems -----------------------------------------------------------
def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    path = tmp_path / "none.toml"
    message = fails(path)
    assert message == (f"config file not found: {path} (run `chatto init -c {path}` to create one)")


def test_malformed_toml_names_file_and_position(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[core]\nsecret_key = "{LEAK}\n')
    message = fails(bad, match=r"malformed TOML in .*bad\.toml: .*line 2")
    assert LEAK not in message


def test_unknown_key_suggests_a_close_match(cfg: Path) -> None:
    text = cfg.read_text().replace("\nport = 4000\n", "\nprot = 4000\n")
    cfg.write_text(text)
    fails(cfg, match=r"^unknown config key 'webserver\.prot' \(did you mean 'webserver\.port'\?\)$")


def test_unknown_key_without_a_close_match_has_no_hint(cfg: Path) -> None:
    add_line(cfg, "actors", "zzzz = 1")
    assert fails(cfg) == "unknown config key 'actors.zzzz'"


def test_unknown_sections_are_named(cfg: Path) -> None:
    cfg.write_text(cfg.read_text() + "\n[nonsense]\nx = 1\n")
    fails(cfg, match=r"^unknown config key 'nonsense'$")


def test_misspelled_nested_section_is_named_with_a_hint(cfg: Path) -> None:
    cfg.write_text(cfg.read_text().replace("[nats.embedded]", "[nats.embeded]"))
    fails(cfg, match=r"'nats\.embeded' \(did you mean 'nats\.embedded'\?\)")


@pytest.mark.parametrize(
    ("key", "literal", "expected"),
    [
        ("webserver.port", '"4000"', "an integer"),
        ("webserver.port", "true", "an integer"),
        ("webserver.port", "40.5", "an integer"),
        ("nats.embedded.enabled", '"yes"', "a boolean"),
        ("webserver.allowed_origins", '"https://a.example"', "a list of strings"),
        ("owners.emails", "[1, 2]", "a list of strings"),
        ("actors.idle_seconds", '"300"', "a number"),
        ("actors.idle_seconds", "nan", "a number"),
        ("core.server_name", "1", "a string"),
    ],
)
def test_wrong_types_name_the_key_and_expected_type(
    cfg: Path, key: str, literal: str, expected: str
) -> None:
    set_value(cfg, key, literal)
    fails(cfg, match=f"^config key '{key}' must be {expected}$")


def test_int_is_accepted_for_float_keys(cfg: Path) -> None:
    set_value(cfg, "webserver.shutdown_grace_seconds", "3")
    value = load_config(cfg, environ={}).webserver.shutdown_grace_seconds
    assert value == 3.0 and isinstance(value, float)


def test_section_given_as_a_value_is_refused(cfg: Path) -> None:
    section = '[logging]\nlevel = "info"\nformat = "text"'
    cfg.write_text('logging = "debug"\n' + cfg.read_text().replace(section, ""))
    fails(cfg, match=r"'logging' must be a \[logging\] section")


# --- secrets -----------------------------------------------------------------
def test_missing_secret_says_how_to_fix_it(cfg: Path) -> None:
    set_value(cfg, "core.secret_key", '""')
    assert fails(cfg) == (
        "missing required secret 'core.secret_key' (run `chatto init` to generate one, "
        "or set CHATTO_CORE_SECRET_KEY)"
    )


def test_missing_secret_from_the_environment(cfg: Path) -> None:
    fails(
        cfg,
        {"CHATTO_WEBSERVER_ASSET_SIGNING_SECRET": ""},
        match="missing required secret 'webserver.asset_signing_secret'",
    )


def test_short_secrets_are_refused(cfg: Path) -> None:
    set_value(cfg, "webserver.cookie_signing_secret", '"' + "x" * 31 + '"')
    fails(cfg, match="secret 'webserver.cookie_signing_secret' is too short")


def test_optional_encryption_secret_may_be_empty_but_not_short(cfg: Path) -> None:
    set_value(cfg, "webserver.cookie_encryption_secret", '""')
    assert load_config(cfg, environ={}).webserver.cookie_encryption_secret == ""
    set_value(cfg, "webserver.cookie_encryption_secret", '"short"')
    fails(cfg, match="secret 'webserver.cookie_encryption_secret' is too short")


def test_embedded_nats_token_rules(cfg: Path) -> None:
    fails(cfg, {"CHATTO_NATS_EMBEDDED_TOKEN": ""}, match="'nats.embedded.token'")
    fails(cfg, {"CHATTO_NATS_EMBEDDED_TOKEN": "x" * 15}, match="'nats.embedded.token' is too")
    config = load_config(cfg, environ={"CHATTO_NATS_EMBEDDED_TOKEN": "x" * 16})
    assert config.nats.embedded.token == "x" * 16


def leak_in_wrong_type(path: Path) -> str:
    set_value(path, "webserver.port", f'"{LEAK}"')
    return fails(path)


def leak_in_short_secret(path: Path) -> str:
    set_value(path, "core.secret_key", f'"{LEAK}"')
    return fails(path, match="too short")


def leak_in_misspelled_key(path: Path) -> str:
    add_line(path, "core", f'secret_kye = "{LEAK}"')
    return fails(path, match="did you mean 'core.secret_key'")


def leak_in_bad_env(path: Path) -> str:
    return fails(path, {"CHATTO_WEBSERVER_MAX_BODY_BYTES": LEAK})


def leak_in_short_env_secret(path: Path) -> str:
    return fails(path, {"CHATTO_NATS_EMBEDDED_TOKEN": LEAK[:12]}, match="too short")


def leak_in_list(path: Path) -> str:
    set_value(path, "owners.emails", f'["{LEAK}"]')
    return fails(path, match="owners.emails")


@pytest.mark.parametrize(
    "provoke",
    [
        leak_in_wrong_type,
        leak_in_short_secret,
        leak_in_misspelled_key,
        leak_in_bad_env,
        leak_in_short_env_secret,
        leak_in_list,
    ],
)
def test_error_messages_never_contain_the_value(cfg: Path, provoke: Callable[[Path], str]) -> None:
    real = load_config(cfg, environ={})
    message = provoke(cfg)
    assert LEAK not in message and LEAK[:12] not in message
    for key in secret_keys():
        value = lookup(real, key)
        assert not value or value not in message


# --- NATS mode ---------------------------------------------------------------
def test_disabled_embedded_nats_needs_a_url(cfg: Path) -> None:
    message = fails(cfg, {"CHATTO_NATS_EMBEDDED_ENABLED": "false"})
    assert "'nats.url'" in message


def test_url_with_embedded_enabled_is_refused(cfg: Path) -> None:
    message = fails(cfg, {"CHATTO_NATS_URL": "nats://x:4222"})
    assert "'nats.embedded.enabled'" in message
    assert "set enabled = false to use an external NATS" in message


def test_external_nats_needs_no_embedded_token(cfg: Path) -> None:
    set_value(cfg, "nats.embedded.enabled", "false")
    set_value(cfg, "nats.embedded.token", '""')
    set_value(cfg, "nats.url", '"nats://nats.internal:4222"')
    config = load_config(cfg, environ={})
    assert config.nats.url == "nats://nats.internal:4222"
    assert config.nats.embedded.enabled is False


@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.8.7", "::1", "localhost"])
def test_embedded_host_may_be_loopback(cfg: Path, host: str) -> None:
    config = load_config(cfg, environ={"CHATTO_NATS_EMBEDDED_HOST": host})
    assert config.nats.embedded.host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "nats.example.com", ""])
def test_embedded_host_must_be_loopback(cfg: Path, host: str) -> None:
    fails(cfg, {"CHATTO_NATS_EMBEDDED_HOST": host}, match="'nats.embedded.host'.*loopback")


# --- ranges ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("var", "value", "key"),
    [
        ("CHATTO_WEBSERVER_PORT", "70000", "webserver.port"),
        ("CHATTO_WEBSERVER_PORT", "-1", "webserver.port"),
        ("CHATTO_WEBSERVER_MAX_BODY_BYTES", "0", "webserver.max_body_bytes"),
        ("CHATTO_WEBSERVER_SHUTDOWN_GRACE_SECONDS", "0", "webserver.shutdown_grace_seconds"),
        ("CHATTO_WEBSERVER_URL", "ftp://x", "webserver.url"),
        ("CHATTO_NATS_REPLICAS", "6", "nats.replicas"),
        ("CHATTO_NATS_REPLICAS", "0", "nats.replicas"),
        ("CHATTO_ACTORS_MAILBOX_SIZE", "0", "actors.mailbox_size"),
        ("CHATTO_ACTORS_ASK_TIMEOUT_SECONDS", "-1", "actors.ask_timeout_seconds"),
        ("CHATTO_ACTORS_IDLE_SECONDS", "0", "actors.idle_seconds"),
        ("CHATTO_ACTORS_MAX_APPEND_RETRIES", "0", "actors.max_append_retries"),
        ("CHATTO_AUTH_BCRYPT_COST", "3", "auth.bcrypt_cost"),
        ("CHATTO_CACHE_COLD_PAGES", "-1", "cache.cold_pages"),
        ("CHATTO_CACHE_HOT_MESSAGES", "0", "cache.hot_messages"),
        ("CHATTO_CACHE_HOT_ROOMS", "0", "cache.hot_rooms"),
        ("CHATTO_CACHE_ACTOR_HOT_MESSAGES", "7", "cache.actor_hot_messages"),
        ("CHATTO_LIMITS_LOGIN_PER_IP", "ten/60", "limits.login_per_ip"),
        ("CHATTO_LOGGING_LEVEL", "loud", "logging.level"),
        ("CHATTO_LOGGING_FORMAT", "xml", "logging.format"),
        ("CHATTO_OWNERS_EMAILS", "not-an-email", "owners.emails"),
        ("CHATTO_METRICS_ALLOW", "127.0.0.1,somewhere", "metrics.allow"),
        ("CHATTO_METRICS_TOKEN", "too-short", "metrics.token"),
        (
            "CHATTO_WEBSERVER_WEBSOCKET_INIT_TIMEOUT_SECONDS",
            "0",
            "webserver.websocket_init_timeout_seconds",
        ),
    ],
)
def test_ranges_and_enums_name_the_key(cfg: Path, var: str, value: str, key: str) -> None:
    fails(cfg, {var: value}, match=f"'{key}'".replace(".", r"\."))


def test_port_zero_means_pick_a_free_port(cfg: Path) -> None:
    assert load_config(cfg, environ={"CHATTO_WEBSERVER_PORT": "0"}).webserver.port == 0


# --- paths and redaction -----------------------------------------------------
def test_relative_paths_resolve_against_the_config_folder(cfg: Path) -> None:
    assert cfg.parent.resolve() != Path.cwd().resolve()
    set_value(cfg, "core.data_dir", '"../state"')
    set_value(cfg, "nats.embedded.store_dir", '"jetstream"')
    config = load_config(cfg, environ={})
    assert config.data_dir == (cfg.parent.parent / "state").resolve()
    assert config.nats_store_dir == (cfg.parent / "jetstream").resolve()


def test_absolute_store_dir_is_kept(cfg: Path, tmp_path: Path) -> None:
    store = tmp_path / "elsewhere"
    config = load_config(cfg, environ={"CHATTO_NATS_EMBEDDED_STORE_DIR": str(store)})
    assert config.nats_store_dir == store.resolve()


def test_redacted_hides_every_secret_and_keeps_the_rest(cfg: Path) -> None:
    config = load_config(cfg, environ={"CHATTO_OWNERS_EMAILS": "o@example.com"})
    redacted = flatten(config.redacted())
    assert list(redacted) == list(all_keys())
    keys = secret_keys()
    assert set(SECRET_BYTES) < set(keys)
    assert {"nats.token", "nats.password", "smtp.password"} < set(keys)
    text = repr(redacted)
    for key in keys:
        value = lookup(config, key)
        assert redacted[key] == ("<redacted>" if value else "")
        assert not value or value not in text
    assert redacted["webserver.port"] == 4000
    assert redacted["owners.emails"] == ["o@example.com"]
    assert redacted["nats.creds_file"] == ""


# --- the example -------------------------------------------------------------
def test_example_documents_every_key_with_its_default() -> None:
    example = flatten(tomllib.loads((ROOT / "chatto.toml.example").read_text()))
    assert set(example) == set(all_keys())
    defaults = Config()
    for key, value in example.items():
        assert value == lookup(defaults, key), key
