"""Settings come from RECOVERY_* variables; production refuses development secrets."""

import pytest

from recovery_app import create_app
from recovery_app.config import ConfigError, load_config, parse_document_types


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


@pytest.mark.parametrize("name, value", [("SLA_HOURS", "twelve"), ("REQUIRE_SELFIE", "maybe"), ("ENV", "staging")])
def test_malformed_settings_are_refused_with_their_name(monkeypatch, name, value):
    monkeypatch.setenv(f"RECOVERY_{name}", value)
    with pytest.raises(ConfigError, match=f"RECOVERY_{name}"):
        load_config()


def test_document_types_are_parsed_with_their_sides():
    assert parse_document_types("passport:front,licence:front+back") == {
        "passport": ("front",), "licence": ("front", "back")}
    with pytest.raises(ConfigError):
        parse_document_types("passport:inside")


def test_cli_refuses_a_short_password_with_its_reason(runner):
    result = runner.invoke(args=["users", "create", "--role", "reviewer", "--email", "r@example.test",
                                 "--password", "password123"])
    assert result.exit_code == 1
    assert "12" in result.output  # the rule is named, in the default language


def test_cli_rejects_a_seller_without_an_account(runner):
    result = runner.invoke(args=["users", "create", "--role", "seller_user", "--email", "s@example.test",
                                 "--password", "quiet lantern orchard 9107"])
    assert result.exit_code == 2 and "--account" in result.output
