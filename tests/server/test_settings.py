"""Loading the server settings: sources and precedence, refusals, and secrets kept out of sight."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from tokensmith.errors import TokensmithError
from tokensmith.keys import MasterKey, RotationPolicy
from tokensmith.server.settings import (
    CONFIG_ENV_VAR,
    ENV_PREFIX,
    Settings,
    SettingsError,
    env_name,
    load_settings,
)

# 32 bytes, base64url: a well-formed master key; the HS256 secret is 43 random-looking chars.
MASTER = MasterKey(bytes(range(32))).to_text()
HS_SECRET = "q7Zr0pXv3NfLk9WtBc2MhYs8JdGa5EuR1iOw6TnPb4K"


def refused(environ: dict[str, str], toml: Path | None = None) -> SettingsError:
    with pytest.raises(SettingsError) as info:
        load_settings(environ, toml)
    return info.value


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokensmith.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- sources and precedence ---------------------------------------------------------


def test_defaults_load_from_an_empty_environment() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.signing_algorithms == ("RS256",)
    assert settings.rotation_period == 30 * 86400
    assert settings.key_prepublish == 86400
    assert settings.jwks_max_age == 600
    assert settings.access_token_lifetime == 900
    assert settings.refresh_reuse_grace == 10
    assert settings.master_key is None
    assert settings.data_dir == Path("var")


def test_variables_without_the_prefix_are_not_settings() -> None:
    settings = load_settings({"PATH": "/usr/bin", "HOME": "/root", "PORT": "1"})
    assert settings.port == 8000


def test_the_model_never_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENSMITH_PORT", "1234")
    monkeypatch.setenv("TOKENSMITH_FOO", "unknown")
    assert Settings().port == 8000
    assert load_settings({}).port == 8000


def test_environment_overrides_toml_overrides_defaults(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, 'port = 9000\nleeway = "2m"\n')
    settings = load_settings({"TOKENSMITH_PORT": "9100"}, toml)
    assert settings.port == 9100  # environment
    assert settings.leeway == 120  # file
    assert settings.workers == 1  # default


def test_toml_values_keep_their_types(tmp_path: Path) -> None:
    toml = write_toml(
        tmp_path,
        'signing_algorithms = ["RS256", "ES256"]\nallow_insecure_issuer = true\n'
        'issuer = "http://10.0.0.5:8000"\nrotation_period = 172800\n',
    )
    settings = load_settings({}, toml)
    assert settings.signing_algorithms == ("RS256", "ES256")
    assert settings.allow_insecure_issuer is True
    assert settings.rotation_period == 2 * 86400


def test_config_variable_names_the_file_and_an_explicit_path_wins(tmp_path: Path) -> None:
    named = write_toml(tmp_path, "port = 9001\n")
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("port = 9002\n", encoding="utf-8")
    assert load_settings({CONFIG_ENV_VAR: str(named)}).port == 9001
    assert load_settings({CONFIG_ENV_VAR: str(named)}, explicit).port == 9002


def test_missing_or_broken_toml_file_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert str(missing) in str(refused({}, missing))
    broken = write_toml(tmp_path, "port = = 1\n")
    error = refused({}, broken)
    assert str(broken) in str(error)
    assert "not valid TOML" in str(error)


# -- unknown settings ------------------------------------------------------------------


def test_unknown_environment_variable_is_refused_by_name() -> None:
    error = refused({"TOKENSMITH_FOO": "1"})
    assert "TOKENSMITH_FOO" in str(error)
    assert error.settings == ("TOKENSMITH_FOO",)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("TOKENSMITH_PROT", "TOKENSMITH_PORT"),
        ("tokensmith_port", "TOKENSMITH_PORT"),  # wrong case is a typo, not "not ours"
        ("TOKENSMITH_DATA_DIR", "TOKENSMITH_DATA"),  # the field's name, not its variable
    ],
)
def test_near_miss_variable_names_suggest_the_real_one(name: str, suggestion: str) -> None:
    error = refused({name: "8000"})
    assert f"{name}: unknown setting" in str(error)
    assert f"did you mean {suggestion}?" in str(error)


def test_unknown_toml_key_is_refused_by_name(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, "prot = 8000\n[server]\nport = 1\n")
    error = refused({}, toml)
    assert "prot: unknown setting" in str(error)
    assert "did you mean port?" in str(error)
    assert "server: unknown setting" in str(error)
    assert str(toml) in str(error)


# -- durations -------------------------------------------------------------------------

# refresh_token_idle_lifetime accepts 1 minute to 366 days: every form below is in range.
IDLE = "TOKENSMITH_REFRESH_TOKEN_IDLE_LIFETIME"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * 86400),
        ("12h", 12 * 3600),
        ("15m", 900),
        ("90", 90),
        ("90s", 90),
        (" 2D ", 2 * 86400),
    ],
)
def test_durations_parse_from_the_environment(text: str, seconds: int) -> None:
    assert load_settings({IDLE: text}).refresh_token_idle_lifetime == seconds


def test_durations_parse_from_toml_numbers_and_strings(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, 'refresh_token_idle_lifetime = 90\nrotation_period = "12h"\n')
    settings = load_settings({"TOKENSMITH_KEY_PREPUBLISH": "1h"}, toml)
    assert settings.refresh_token_idle_lifetime == 90
    assert settings.rotation_period == 12 * 3600


@pytest.mark.parametrize("text", ["1.5", "true", "-5", "", "5w", "15 m", "m", "1e3", "٣"])
def test_malformed_durations_are_refused_by_name(text: str) -> None:
    error = refused({IDLE: text})
    assert error.settings == (IDLE,)
    assert "not a duration" in str(error)


@pytest.mark.parametrize("value", ["1.5", "true", "[90]"])
def test_non_integer_toml_durations_are_refused(tmp_path: Path, value: str) -> None:
    error = refused({}, write_toml(tmp_path, f"refresh_token_idle_lifetime = {value}\n"))
    assert error.settings == (IDLE,)
    assert "refresh_token_idle_lifetime in" in str(error)  # the file's key is named too


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TOKENSMITH_ACCESS_TOKEN_LIFETIME", "30s", "between 1m and 1d, not 30s"),
        ("TOKENSMITH_ACCESS_TOKEN_LIFETIME", "2d", "between 1m and 1d, not 2d"),
        ("TOKENSMITH_REFRESH_REUSE_GRACE", "61", "between 0s and 1m, not 61s"),
        ("TOKENSMITH_LEEWAY", "301", "between 0s and 5m, not 301s"),
        ("TOKENSMITH_PORT", "0", "greater than or equal to 1"),
        ("TOKENSMITH_PORT", "65536", "less than or equal to 65535"),
        ("TOKENSMITH_WORKERS", "0", "greater than or equal to 1"),
        ("TOKENSMITH_PORT", "http", "valid integer"),
        ("TOKENSMITH_ALLOW_INSECURE_ISSUER", "maybe", "valid boolean"),
        ("TOKENSMITH_LOG_LEVEL", "verbose", "'info'"),
        ("TOKENSMITH_HOST", "", "at least 1 character"),
        ("TOKENSMITH_DATA", " ", "must not be empty"),
    ],
)
def test_out_of_range_and_malformed_values_are_refused(name: str, value: str, message: str) -> None:
    error = refused({name: value})
    assert error.settings == (name,)
    assert f"{name}: " in str(error)
    assert message in str(error)


def test_every_problem_is_reported_at_once() -> None:
    error = refused(
        {
            "TOKENSMITH_PORT": "0",
            "TOKENSMITH_LEEWAY": "1h",
            "TOKENSMITH_NOPE": "1",
            "TOKENSMITH_MASTER_KEY": "changeme",
        }
    )
    assert set(error.settings) == {
        "TOKENSMITH_PORT",
        "TOKENSMITH_LEEWAY",
        "TOKENSMITH_NOPE",
        "TOKENSMITH_MASTER_KEY",
    }
    assert str(error).startswith("invalid configuration (4 problems):")


def test_the_error_is_a_tokensmith_error_with_a_stable_code() -> None:
    error = refused({"TOKENSMITH_PORT": "0"})
    assert isinstance(error, TokensmithError)
    assert error.code == "invalid_settings"
    assert error.to_dict() == {"code": "invalid_settings", "message": str(error)}
    # The pydantic error holds the raw inputs: it must not ride along in a traceback.
    assert error.__cause__ is None
    assert error.__context__ is None


# -- other values ------------------------------------------------------------------------


def test_algorithms_from_a_comma_separated_variable() -> None:
    settings = load_settings({"TOKENSMITH_SIGNING_ALGORITHMS": "RS256, ES256,EdDSA"})
    assert settings.signing_algorithms == ("RS256", "ES256", "EdDSA")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("none", "item 1: Input should be 'RS256', 'ES256', 'EdDSA' or 'HS256'"),
        ("RS256,HS512", "item 2: Input should be"),
        ("rs256", "item 1: Input should be"),  # JOSE names are case-sensitive
        ("RS256,RS256", "names an algorithm twice"),
        (" , ", "at least one algorithm"),
    ],
)
def test_bad_algorithm_lists_are_refused(value: str, message: str) -> None:
    error = refused({"TOKENSMITH_SIGNING_ALGORITHMS": value})
    assert error.settings == ("TOKENSMITH_SIGNING_ALGORITHMS",)
    assert message in str(error)


def test_no_proxy_is_trusted_by_default() -> None:
    assert load_settings({}).trusted_proxies == ()


def test_trusted_proxies_from_a_comma_separated_variable() -> None:
    settings = load_settings({"TOKENSMITH_TRUSTED_PROXIES": "10.0.0.5, 192.168.0.0/16,::1"})
    assert settings.trusted_proxies == ("10.0.0.5", "192.168.0.0/16", "::1")


@pytest.mark.parametrize("value", ["*", "10.0.0.5,*", "proxy.example", "10.0.0.0/33"])
def test_bad_trusted_proxies_are_refused(value: str) -> None:
    error = refused({"TOKENSMITH_TRUSTED_PROXIES": value})
    assert error.settings == ("TOKENSMITH_TRUSTED_PROXIES",)
    assert "is not an IP address or network" in str(error)


def test_log_level_is_case_insensitive() -> None:
    assert load_settings({"TOKENSMITH_LOG_LEVEL": "DEBUG"}).log_level == "debug"


def test_database_url_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    assert load_settings({}).resolved_database_url() == "sqlite+aiosqlite:///var/tokensmith.db"
    settings = load_settings({"TOKENSMITH_DATA": str(tmp_path)})
    assert settings.data_dir == tmp_path
    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path}/tokensmith.db"
    assert settings.master_key_file() == tmp_path / "master.key"


def test_explicit_database_url_is_used_and_kept_secret() -> None:
    url = "postgresql+asyncpg://app:hunter2-db@db.internal/tokensmith"
    settings = load_settings({"TOKENSMITH_DATABASE_URL": url})
    assert settings.resolved_database_url() == url
    assert "hunter2-db" not in repr(settings)
    assert "hunter2-db" not in settings.model_dump_json()


def test_malformed_database_url_is_refused_without_echoing_it() -> None:
    error = refused({"TOKENSMITH_DATABASE_URL": "app:hunter2-db@db.internal/tokensmith"})
    assert error.settings == ("TOKENSMITH_DATABASE_URL",)
    assert "hunter2-db" not in str(error)


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(ValidationError):
        settings.port = 1


def test_rotation_policy_follows_the_settings() -> None:
    settings = load_settings(
        {
            "TOKENSMITH_ROTATION_PERIOD": "7d",
            "TOKENSMITH_KEY_PREPUBLISH": "12h",
            "TOKENSMITH_ACCESS_TOKEN_LIFETIME": "5m",
            "TOKENSMITH_LEEWAY": "30",
        }
    )
    assert settings.rotation_policy() == RotationPolicy(
        rotation_period=7 * 86400, prepublish=12 * 3600, max_token_lifetime=300, leeway=30
    )


def test_every_setting_has_a_description_and_its_own_variable() -> None:
    names = [env_name(field) for field in Settings.model_fields]
    assert len(set(names)) == len(names)
    assert all(name.startswith(ENV_PREFIX) for name in names)
    assert CONFIG_ENV_VAR not in names
    for field, info in Settings.model_fields.items():
        assert info.description, field


# -- unsafe values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "changeme",
        "change-me",
        "CHANGE_ME_PLEASE_0123456789abcdefghijklmnopq",
        "secret",
        "my-super-secret-master-key-for-tokensmith-01",
        "x" * 43,
        "A" * 43,  # valid base64url of 32 zero bytes: refused for its lack of variety
        "abababababababababababababababababababababa",
    ],
)
def test_placeholder_master_key_is_refused(value: str) -> None:
    error = refused({"TOKENSMITH_MASTER_KEY": value})
    assert error.settings == ("TOKENSMITH_MASTER_KEY",)
    assert value not in str(error)


@pytest.mark.parametrize(
    "value",
    [
        MASTER[:-4],  # too short
        MASTER + "AAAA",  # too long
        MASTER[:-1] + "!",  # not base64
    ],
)
def test_master_key_must_be_32_bytes_of_base64(value: str) -> None:
    error = refused({"TOKENSMITH_MASTER_KEY": value})
    assert error.settings == ("TOKENSMITH_MASTER_KEY",)
    assert value not in str(error)
    assert "value not shown" in str(error)


def test_valid_master_key_is_accepted() -> None:
    settings = load_settings({"TOKENSMITH_MASTER_KEY": MASTER})
    parsed = settings.parsed_master_key()
    assert parsed is not None
    assert parsed.to_text() == MASTER
    assert load_settings({}).parsed_master_key() is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("k3Y!9vQ#2mZx", "at least 32 bytes"),
        ("Zq8#rT5w!Lp2&Vn7@Xc4$Hb9^Md1*Fg", "at least 32 bytes"),  # 31 bytes
        ("this-is-my-secret-for-hs256-signing-0123", "placeholder"),
        ("0123012301230123012301230123012301230123", "distinct characters"),
    ],
)
def test_weak_hs256_secret_is_refused(value: str, message: str) -> None:
    error = refused({"TOKENSMITH_SIGNING_ALGORITHMS": "HS256", "TOKENSMITH_HS256_SECRET": value})
    assert "TOKENSMITH_HS256_SECRET" in error.settings
    assert message in str(error)
    assert value not in str(error)


def test_hs256_needs_a_secret_and_a_secret_needs_hs256() -> None:
    error = refused({"TOKENSMITH_SIGNING_ALGORITHMS": "RS256,HS256"})
    assert set(error.settings) == {"TOKENSMITH_SIGNING_ALGORITHMS", "TOKENSMITH_HS256_SECRET"}
    assert "HS256 needs hs256_secret" in str(error)
    error = refused({"TOKENSMITH_HS256_SECRET": HS_SECRET})
    assert "HS256 is not in signing_algorithms" in str(error)
    assert HS_SECRET not in str(error)


def test_hs256_with_a_strong_secret_is_accepted() -> None:
    settings = load_settings(
        {"TOKENSMITH_SIGNING_ALGORITHMS": "RS256,HS256", "TOKENSMITH_HS256_SECRET": HS_SECRET}
    )
    assert settings.signing_algorithms == ("RS256", "HS256")
    assert settings.hs256_secret_bytes() == HS_SECRET.encode()


@pytest.mark.parametrize(
    "issuer",
    [
        "http://auth.example.com",
        "http://10.0.0.5:8000",
        "http://0.0.0.0:8000",
        "http://[2001:db8::1]",
    ],
)
def test_http_issuer_on_a_non_local_host_is_refused(issuer: str) -> None:
    error = refused({"TOKENSMITH_ISSUER": issuer})
    assert set(error.settings) == {"TOKENSMITH_ISSUER", "TOKENSMITH_ALLOW_INSECURE_ISSUER"}
    assert "use https" in str(error)
    allowed = load_settings({"TOKENSMITH_ISSUER": issuer, "TOKENSMITH_ALLOW_INSECURE_ISSUER": "1"})
    assert allowed.issuer == issuer


@pytest.mark.parametrize(
    "issuer",
    ["http://localhost:8000", "http://127.0.0.1", "http://127.0.0.2:9000", "http://[::1]:8000"],
)
def test_http_issuer_on_localhost_is_allowed(issuer: str) -> None:
    assert load_settings({"TOKENSMITH_ISSUER": issuer}).issuer == issuer


@pytest.mark.parametrize(
    "issuer", ["https://auth.example.com", "https://10.0.0.5:8443/tenant", "https://localhost"]
)
def test_https_issuer_is_allowed_anywhere(issuer: str) -> None:
    assert load_settings({"TOKENSMITH_ISSUER": issuer}).issuer == issuer


def test_issuer_is_normalized() -> None:
    settings = load_settings({"TOKENSMITH_ISSUER": "HTTPS://Auth.Example.COM/Tenant/"})
    assert settings.issuer == "https://auth.example.com/Tenant"


@pytest.mark.parametrize(
    ("issuer", "message"),
    [
        ("https://auth.example.com/?x=1", "no query or fragment"),
        ("https://auth.example.com#top", "no query or fragment"),
        ("https://auth.example.com?", "no query or fragment"),
        ("https://user:pw@auth.example.com", "user name or password"),
        ("ftp://auth.example.com", "must start with https://"),
        ("auth.example.com", "must start with https://"),
        ("https://", "must name a host"),
        ("https://auth.example.com:99999", "invalid port"),
        ("https://auth example.com", "without spaces"),
        ("https://autĥ.example.com", "ASCII"),
    ],
)
def test_malformed_issuer_is_refused(issuer: str, message: str) -> None:
    error = refused({"TOKENSMITH_ISSUER": issuer})
    assert "TOKENSMITH_ISSUER" in error.settings
    assert message in str(error)


# -- settings that must agree ------------------------------------------------------------


def test_prepublish_must_be_shorter_than_the_rotation_period() -> None:
    error = refused({"TOKENSMITH_ROTATION_PERIOD": "1d", "TOKENSMITH_KEY_PREPUBLISH": "1d"})
    assert set(error.settings) == {"TOKENSMITH_KEY_PREPUBLISH", "TOKENSMITH_ROTATION_PERIOD"}
    assert "key_prepublish (1d) must be shorter than rotation_period (1d)" in str(error)


def test_jwks_max_age_must_be_shorter_than_prepublish() -> None:
    error = refused({"TOKENSMITH_KEY_PREPUBLISH": "10m", "TOKENSMITH_JWKS_MAX_AGE": "600"})
    assert set(error.settings) == {"TOKENSMITH_JWKS_MAX_AGE", "TOKENSMITH_KEY_PREPUBLISH"}
    ok = load_settings({"TOKENSMITH_KEY_PREPUBLISH": "10m", "TOKENSMITH_JWKS_MAX_AGE": "599"})
    assert ok.jwks_max_age == 599


def test_idle_refresh_lifetime_may_not_exceed_the_absolute_one() -> None:
    error = refused(
        {
            "TOKENSMITH_REFRESH_TOKEN_IDLE_LIFETIME": "31d",
            "TOKENSMITH_REFRESH_TOKEN_ABSOLUTE_LIFETIME": "30d",
        }
    )
    assert set(error.settings) == {
        "TOKENSMITH_REFRESH_TOKEN_IDLE_LIFETIME",
        "TOKENSMITH_REFRESH_TOKEN_ABSOLUTE_LIFETIME",
    }
    equal = load_settings(
        {
            "TOKENSMITH_REFRESH_TOKEN_IDLE_LIFETIME": "30d",
            "TOKENSMITH_REFRESH_TOKEN_ABSOLUTE_LIFETIME": "30d",
        }
    )
    assert equal.refresh_token_idle_lifetime == equal.refresh_token_absolute_lifetime


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        (
            {"TOKENSMITH_LOGIN_FREE_FAILURES": "20"},
            {"TOKENSMITH_LOGIN_FREE_FAILURES", "TOKENSMITH_LOGIN_LOCK_THRESHOLD"},
        ),
        (
            {"TOKENSMITH_LOGIN_IP_THRESHOLD": "19"},
            {"TOKENSMITH_LOGIN_IP_THRESHOLD", "TOKENSMITH_LOGIN_LOCK_THRESHOLD"},
        ),
    ],
)
def test_throttle_thresholds_must_be_ordered(environ: dict[str, str], names: set[str]) -> None:
    assert set(refused(environ).settings) == names


def test_a_conflict_from_the_file_names_the_file(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, 'rotation_period = "12h"\n')
    error = refused({}, toml)
    assert f"TOKENSMITH_ROTATION_PERIOD (rotation_period in {toml})" in str(error)
    # key_prepublish was left at its default: named, without a file.
    assert "TOKENSMITH_KEY_PREPUBLISH, " in str(error)


# -- secrets stay hidden ------------------------------------------------------------------


def secret_settings() -> Settings:
    return load_settings(
        {
            "TOKENSMITH_MASTER_KEY": MASTER,
            "TOKENSMITH_SIGNING_ALGORITHMS": "RS256,HS256",
            "TOKENSMITH_HS256_SECRET": HS_SECRET,
        }
    )


def test_secrets_are_not_in_repr_str_or_json() -> None:
    settings = secret_settings()
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert MASTER not in text
        assert HS_SECRET not in text
    dumped = json.loads(settings.model_dump_json())
    assert dumped["master_key"] == "**********"


def test_secrets_are_revealed_only_when_asked() -> None:
    settings = secret_settings()
    assert settings.master_key is not None
    assert settings.master_key.get_secret_value() == MASTER
    assert settings.hs256_secret is not None
    assert settings.hs256_secret.get_secret_value() == HS_SECRET


def test_secrets_are_not_in_errors_about_other_settings(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, f'master_key = "{MASTER}"\nport = 0\n')
    error = refused({"TOKENSMITH_HS256_SECRET": HS_SECRET}, toml)
    assert MASTER not in str(error)
    assert HS_SECRET not in str(error)
    assert MASTER not in repr(error.problems)


def test_direct_construction_hides_inputs_in_validation_errors() -> None:
    with pytest.raises(ValidationError) as info:
        Settings.model_validate(
            {"master_key": "changeme-abcdefgh", "hs256_secret": "short-secret-value"}
        )
    assert "changeme-abcdefgh" not in str(info.value)
    assert "short-secret-value" not in str(info.value)
