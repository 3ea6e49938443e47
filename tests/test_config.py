"""Settings come from RECOVERY_* variables; production refuses development secrets."""

import pytest

from recovery_app import create_app
from recovery_app.config import BOUNDED_SETTINGS, RATE_LIMIT_SETTINGS, ConfigError, load_config, parse_document_types


def test_production_refuses_to_start_without_a_real_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("RECOVERY_ENV", "production")
    monkeypatch.delenv("RECOVERY_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="RECOVERY_SECRET_KEY"):
        create_app({"RECOVERY_INSTANCE_DIR": str(tmp_path)})


def test_production_refuses_a_development_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("RECOVERY_ENV", "production")
    monkeypatch.setenv("RECOVERY_SECRET_KEY", "dev-" + "a" * 40)
    monkeypatch.setenv("RECOVERY_VAULT_KEY", "x")
    with pytest.raises(ConfigError):
        load_config()


def test_production_cookies_are_host_prefixed_and_secure(monkeypatch):
    monkeypatch.setenv("RECOVERY_ENV", "production")
    monkeypatch.setenv("RECOVERY_SECRET_KEY", "r" * 48)
    monkeypatch.setenv("RECOVERY_VAULT_KEY", "A" * 43 + "=")
    config = load_config()
    # ASVS 3.3.1, 3.3.3, 3.3.4
    assert config["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert config["SESSION_COOKIE_SECURE"] and config["SESSION_COOKIE_HTTPONLY"]
    assert config["RECOVERY_TRUSTED_DEVICE_COOKIE"].startswith("__Host-")


def test_development_keeps_generated_secrets_in_instance(monkeypatch, tmp_path):
    monkeypatch.delenv("RECOVERY_SECRET_KEY", raising=False)
    monkeypatch.delenv("RECOVERY_VAULT_KEY", raising=False)
    monkeypatch.setenv("RECOVERY_INSTANCE_DIR", str(tmp_path))
    first, second = load_config(), load_config()
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "name, value",
    [
        ("BASE_URL", "http://[::1"),
        ("BASE_URL", "http://localhost:99999"),
        ("BASE_URL", "http://localhost:abc"),
        ("BASE_URL", "recovery.example.com"),
        ("VAULT_KEY", "short"),
        ("VAULT_KEY", "A" * 40),
        ("VAULT_KEY_ID", "k" * 21),
        ("VAULT_OLD_KEYS", "k0:notbase64!!"),
        ("PHONE_REGION", "jp"),
        ("PHONE_REGION", "XX"),
        ("UPLOAD_DIR", "/etc/passwd"),
        ("DOCUMENT_TYPES", "a" * 41 + ":front"),
    ],
)
def test_text_settings_the_app_would_trip_over_later_are_refused_at_start(monkeypatch, tmp_path, name, value):
    monkeypatch.setenv("RECOVERY_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv(f"RECOVERY_{name}", value)
    with pytest.raises(ConfigError, match=f"RECOVERY_{name}"):
        load_config()


@pytest.mark.parametrize("name, value", [("SLA_HOURS", "twelve"), ("REQUIRE_SELFIE", "maybe"), ("ENV", "staging")])
def test_malformed_settings_are_refused_with_their_name(monkeypatch, name, value):
    monkeypatch.setenv(f"RECOVERY_{name}", value)
    with pytest.raises(ConfigError, match=f"RECOVERY_{name}"):
        load_config()


def _walk_bounded_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("RECOVERY_INSTANCE_DIR", str(tmp_path))
    load_config()  # fills BOUNDED_SETTINGS
    assert len(BOUNDED_SETTINGS) >= 50
    return sorted(BOUNDED_SETTINGS.items())


def test_every_number_setting_outside_its_range_is_refused_with_its_name_and_range(monkeypatch, tmp_path):
    # A session length of a billion minutes, a negative argon2 memory, a NaN timeout: the app would
    # start and then fail on every sign-in or every sweep; it refuses to start instead.
    for name, (low, high) in _walk_bounded_settings(monkeypatch, tmp_path):
        whole = isinstance(low, int) and isinstance(high, int)
        step = 1 if whole else 0.001
        for value in (low - step, high + step, *(() if whole else ("nan", "inf"))):
            monkeypatch.setenv(f"RECOVERY_{name}", str(value))
            with pytest.raises(ConfigError, match=f"RECOVERY_{name} must be .* from {low} to {high}"):
                load_config()
        monkeypatch.delenv(f"RECOVERY_{name}")


def test_every_number_setting_takes_the_ends_of_its_range(monkeypatch, tmp_path):
    for name, (low, high) in _walk_bounded_settings(monkeypatch, tmp_path):
        for value in (low, high):
            monkeypatch.setenv(f"RECOVERY_{name}", str(value))
            config = load_config()
            if f"RECOVERY_{name}" in config:  # a few are turned into other settings (MB into bytes)
                assert config[f"RECOVERY_{name}"] == value, name
        monkeypatch.delenv(f"RECOVERY_{name}")


@pytest.mark.parametrize("value", ["banana", "0 per minute", "10 per fortnight", "10 per minute;;", "-1 per hour"])
def test_every_rate_limit_that_cannot_be_read_is_refused_with_its_name(monkeypatch, tmp_path, value):
    # Flask-Limiter skips a limit it cannot read: a typing error would switch off the protection unseen.
    monkeypatch.setenv("RECOVERY_INSTANCE_DIR", str(tmp_path))
    load_config()  # fills RATE_LIMIT_SETTINGS
    assert {"LIMIT_SIGN_IN", "LIMIT_CODE_CHECK", "CASE_LIMIT_PER_USER"} <= RATE_LIMIT_SETTINGS
    for name in sorted(RATE_LIMIT_SETTINGS):
        monkeypatch.setenv(f"RECOVERY_{name}", value)
        with pytest.raises(ConfigError, match=f"RECOVERY_{name} must be rate limits"):
            load_config()
        monkeypatch.delenv(f"RECOVERY_{name}")


def test_a_rate_limit_setting_in_the_usual_notation_is_taken(monkeypatch, tmp_path):
    monkeypatch.setenv("RECOVERY_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("RECOVERY_LIMIT_SIGN_IN", "3/minute;20 per hour")
    assert load_config()["RECOVERY_LIMIT_SIGN_IN"] == "3/minute;20 per hour"


def test_document_types_are_parsed_with_their_sides():
    assert parse_document_types("passport:front,licence:front+back") == {
        "passport": ("front",),
        "licence": ("front", "back"),
    }
    with pytest.raises(ConfigError):
        parse_document_types("passport:inside")


def test_cli_refuses_a_short_password_with_its_reason(runner):
    result = runner.invoke(
        args=["users", "create", "--role", "reviewer", "--email", "r@example.test", "--password", "password123"]
    )
    assert result.exit_code == 1
    assert "12" in result.output and "characters" in result.output  # the rule is named, in English like the rest


SELLER = [
    "users",
    "create",
    "--role",
    "seller_owner",
    "--email",
    "s@example.test",
    "--password",
    "quiet lantern orchard 9107",
]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--account", "a" * 201], "is longer than 200 characters"),
        (["--account", "Shop", "--name", "n" * 201], "is longer than 200 characters"),
        (["--account", "Shop\x01"], "contains control or invisible characters"),
        (["--account", "Shop", "--name", "\u202eevil"], "contains control or invisible characters"),
        (["--account", "   "], "seller roles need --account NAME"),
    ],
)
def test_cli_refuses_text_the_forms_would_refuse_and_creates_nothing(runner, app, extra, message):
    from recovery_app.extensions import db
    from recovery_app.models import Account, User

    result = runner.invoke(args=SELLER + extra)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    with app.app_context():
        assert db.session.query(User).count() == 0 and db.session.query(Account).count() == 0


def test_cli_rejects_a_seller_without_an_account(runner):
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--role",
            "seller_user",
            "--email",
            "s@example.test",
            "--password",
            "quiet lantern orchard 9107",
        ]
    )
    assert result.exit_code == 2 and "--account" in result.output


def _production(monkeypatch, **settings):
    monkeypatch.setenv("RECOVERY_ENV", "production")
    monkeypatch.setenv("RECOVERY_SECRET_KEY", "r" * 48)
    monkeypatch.setenv("RECOVERY_VAULT_KEY", "A" * 43 + "=")
    for name, value in settings.items():
        monkeypatch.setenv(f"RECOVERY_{name}", value)


def test_production_refuses_in_memory_rate_limits_with_several_workers(monkeypatch):
    _production(monkeypatch, WEB_WORKERS="3")
    monkeypatch.delenv("RECOVERY_RATELIMIT_STORAGE_URI", raising=False)  # memory:// by default
    with pytest.raises(ConfigError, match="memory://.*3 workers"):
        load_config()


@pytest.mark.parametrize(
    "settings",
    [
        {"WEB_WORKERS": "3", "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0"},
        {"WEB_WORKERS": "1", "RATELIMIT_STORAGE_URI": "memory://"},
    ],
)
def test_production_accepts_shared_limits_or_a_single_worker(monkeypatch, settings):
    _production(monkeypatch, **settings)
    assert load_config()["RECOVERY_WEB_WORKERS"] == int(settings["WEB_WORKERS"])


def test_development_may_count_in_memory_with_several_workers(monkeypatch, tmp_path):
    monkeypatch.setenv("RECOVERY_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("RECOVERY_ENV", "development")
    monkeypatch.setenv("RECOVERY_WEB_WORKERS", "4")
    monkeypatch.setenv("RECOVERY_RATELIMIT_STORAGE_URI", "memory://")
    assert load_config()["RATELIMIT_STORAGE_URI"] == "memory://"


def test_production_logs_json_and_development_plain_text(monkeypatch, tmp_path):
    monkeypatch.setenv("RECOVERY_INSTANCE_DIR", str(tmp_path))
    _production(monkeypatch, RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0")
    assert load_config()["RECOVERY_LOG_FORMAT"] == "json"
    monkeypatch.setenv("RECOVERY_ENV", "development")
    assert load_config()["RECOVERY_LOG_FORMAT"] == "text"


def test_trusted_proxies_default_to_none(monkeypatch, tmp_path):
    monkeypatch.setenv("RECOVERY_INSTANCE_DIR", str(tmp_path))
    monkeypatch.delenv("RECOVERY_TRUSTED_PROXIES", raising=False)
    assert load_config()["RECOVERY_TRUSTED_PROXIES"] == 0
