"""Settings, read from ``RECOVERY_*`` environment variables.

Development gets safe defaults (SQLite and generated keys under ``instance/``);
production refuses to start without real secrets.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import phonenumbers
from limits import parse_many

from . import vault

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Where templates/, static/ and migrations/ are: beside the package in a checkout,
# inside it when installed from a wheel (setup.py puts them there).
_PACKAGE_DIR = Path(__file__).resolve().parent
RESOURCE_ROOT = _PACKAGE_DIR if (_PACKAGE_DIR / "templates").is_dir() else PROJECT_ROOT
INSTANCE_DIR = PROJECT_ROOT / "instance"

ENVIRONMENTS = ("development", "testing", "production")

# Document types a seller can choose, with the sides each needs. Overridable with
# RECOVERY_DOCUMENT_TYPES="passport:front,drivers_licence:front+back,...".
DEFAULT_DOCUMENT_TYPES = "passport:front,drivers_licence:front+back,my_number_card:front+back,residence_card:front+back"


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; the message says which and why."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"RECOVERY_{name}", default)


def _setting(name: str, default, parse, expected: str):
    """``RECOVERY_<name>`` read with ``parse``, or ``default`` when unset or empty."""
    raw = _env(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ConfigError(f"RECOVERY_{name} must be {expected}, got {raw!r}") from None


def _on_off(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


# Ceilings by unit: a longer time than these is a typing error, and would
# overflow the dates it is added to.
_UNIT_CEILINGS = {"_DAYS": 3650, "_HOURS": 8760, "_MINUTES": 525_600, "_SECONDS": 31_536_000, "_MB": 100_000}

# Every number read from the environment, with the range it must be in (the tests walk it).
BOUNDED_SETTINGS: dict[str, tuple[float, float]] = {}


def _bounded(name: str, default, parse, expected: str, low, high):
    if high is None:
        high = next((ceiling for unit, ceiling in _UNIT_CEILINGS.items() if name.endswith(unit)), None)
        if high is None:
            raise TypeError(f"RECOVERY_{name} needs an explicit upper bound")
    BOUNDED_SETTINGS[name] = (low, high)
    value = _setting(name, default, parse, expected)
    if not (low <= value <= high):  # NaN fails this too
        raise ConfigError(f"RECOVERY_{name} must be {expected} from {low} to {high}, got {_env(name)!r}")
    return value


# Every rate limit read from the environment (the tests walk it).
RATE_LIMIT_SETTINGS: set[str] = set()


def _rate_limit(name: str, default: str) -> str:
    """A rate limit in the limits library's notation ("10 per minute;100 per hour").
    Flask-Limiter skips a limit it cannot read, so a typing error here would
    quietly switch off the protection: it is refused at start instead, and so
    is a limit of zero, which would refuse everybody."""
    RATE_LIMIT_SETTINGS.add(name)
    raw = _env(name) or default
    try:
        limits = parse_many(raw)
    except ValueError:
        limits = []
    if not limits or any(limit.amount < 1 for limit in limits):
        raise ConfigError(
            f"RECOVERY_{name} must be rate limits such as '10 per minute;100 per hour' (at least 1 each), got {raw!r}"
        )
    return raw


def _int(name: str, default: int, *, low: int = 1, high: int | None = None) -> int:
    """A whole number from ``low`` (1 unless said) to ``high`` (from the name's
    unit, such as _MINUTES, unless said)."""
    return _bounded(name, default, int, "a whole number", low, high)


def _float(name: str, default: float, *, low: float, high: float) -> float:
    return _bounded(name, default, float, "a number", low, high)


def _bool(name: str, default: bool) -> bool:
    return _setting(name, default, _on_off, "on or off")


SMTP_SECURITY = {"none": 25, "starttls": 587, "ssl": 465}  # each with its usual port


def _choice(name: str, default: str, choices) -> str:
    value = (_env(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"RECOVERY_{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _networks(name: str, default: str) -> tuple:
    raw = _env(name, default) or ""
    try:
        return tuple(ipaddress.ip_network(part.strip()) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"RECOVERY_{name} must list networks such as 10.0.0.0/8, got {raw!r}: {exc}") from None


def _zones(name: str, default: str) -> tuple:
    raw = _env(name, default) or ""
    zones = tuple(part.strip() for part in raw.split(",") if part.strip())
    for zone in zones:
        try:
            ZoneInfo(zone)
        except (KeyError, ValueError):
            raise ConfigError(f"RECOVERY_{name} must list time zones such as Asia/Tokyo,UTC, got {raw!r}") from None
    return zones


def _kept_secret(path: Path, make) -> str:
    """Read a development secret from ``instance/``, creating it on first use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
    return path.read_text().strip()


def parse_document_types(spec: str) -> dict[str, tuple[str, ...]]:
    types: dict[str, tuple[str, ...]] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, sides = item.partition(":")
        sides_tuple = tuple(s for s in sides.split("+") if s) or ("front",)
        if not name.isidentifier() or len(name) > 40 or any(s not in ("front", "back") for s in sides_tuple):
            raise ConfigError(f"RECOVERY_DOCUMENT_TYPES has an invalid entry: {item!r}")
        types[name] = sides_tuple
    if not types:
        raise ConfigError("RECOVERY_DOCUMENT_TYPES lists no document type")
    return types


def load_config(overrides: dict | None = None) -> dict:
    """Build the Flask config dict from the environment, then apply overrides."""
    overrides = dict(overrides or {})
    env = overrides.get("RECOVERY_ENV") or _env("ENV", "development")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"RECOVERY_ENV must be one of {', '.join(ENVIRONMENTS)}, got {env!r}")
    production = env == "production"
    instance = Path(_env("INSTANCE_DIR", str(INSTANCE_DIR)))

    secret_key = _env("SECRET_KEY")
    vault_key = _env("VAULT_KEY")
    if production:
        if not secret_key or len(secret_key) < 32 or secret_key.startswith("dev"):
            raise ConfigError(
                "RECOVERY_SECRET_KEY must be set to a random value of at least 32 characters in production"
            )
        if not vault_key:
            raise ConfigError("RECOVERY_VAULT_KEY must be set in production (32 bytes, url-safe base64)")
    if "SECRET_KEY" not in overrides and not secret_key:
        secret_key = _kept_secret(instance / "secret_key", lambda: "dev-" + secrets.token_urlsafe(48))
    if "RECOVERY_VAULT_KEY" not in overrides and not vault_key:
        vault_key = _kept_secret(
            instance / "vault_key", lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        )

    database_url = _env("DATABASE_URL") or f"sqlite:///{instance / 'recovery.db'}"
    max_upload_mb = _int("MAX_UPLOAD_MB", 10)
    smtp_security = _choice("SMTP_SECURITY", "starttls", SMTP_SECURITY)
    config = {
        "RECOVERY_ENV": env,
        "TESTING": env == "testing",
        "SECRET_KEY": secret_key,
        "RECOVERY_VAULT_KEY": vault_key,
        "RECOVERY_VAULT_KEY_ID": _env("VAULT_KEY_ID", "k1"),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "RECOVERY_INSTANCE_DIR": str(instance),
        "RECOVERY_UPLOAD_DIR": _env("UPLOAD_DIR", str(PROJECT_ROOT / "uploads")),
        # Where people reach the product. Its host is also the passkeys' relying-party ID and its
        # origin the only one a passkey ceremony is accepted from: a name (localhost in
        # development), since browsers refuse passkeys for a bare IP address.
        "RECOVERY_BASE_URL": _env("BASE_URL", "http://localhost:5000"),
        "RECOVERY_PRODUCT_NAME": "Recovery Desk",
        "RECOVERY_MARKETPLACE_NAME": _env("MARKETPLACE_NAME", "Marketplace"),
        # Sessions and cookies.
        "SESSION_COOKIE_NAME": "__Host-session" if production else "session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "RECOVERY_TRUSTED_DEVICE_COOKIE": "__Host-trusted" if production else "trusted_device",
        "RECOVERY_KNOWN_BROWSER_COOKIE": "__Host-known" if production else "known_browser",
        "RECOVERY_COOKIE_SECURE": production,
        "RECOVERY_TRUSTED_DEVICE_DAYS": _int("TRUSTED_DEVICE_DAYS", 90),
        # A browser that completed a sign-in is not slowed by other people's wrong passwords.
        "RECOVERY_KNOWN_BROWSER_DAYS": _int("KNOWN_BROWSER_DAYS", 180),
        "RECOVERY_SELLER_IDLE_MINUTES": _int("SELLER_IDLE_MINUTES", 30),
        "RECOVERY_SELLER_SESSION_HOURS": _int("SELLER_SESSION_HOURS", 12),
        "RECOVERY_STAFF_IDLE_MINUTES": _int("STAFF_IDLE_MINUTES", 15),
        "RECOVERY_STAFF_SESSION_HOURS": _int("STAFF_SESSION_HOURS", 8),
        "RECOVERY_FRESH_CODE_MINUTES": _int("FRESH_CODE_MINUTES", 10),
        # How long a passkey challenge handed to a browser stays usable (it is used once).
        "RECOVERY_PASSKEY_CHALLENGE_SECONDS": _int("PASSKEY_CHALLENGE_SECONDS", 300),
        # Passwords (argon2id). The defaults are argon2-cffi's RFC 9106 "low memory" profile.
        "RECOVERY_ARGON2_TIME_COST": _int("ARGON2_TIME_COST", 3, high=100),
        "RECOVERY_ARGON2_MEMORY_KIB": _int("ARGON2_MEMORY_KIB", 65536, low=8, high=4 * 1024 * 1024),
        "RECOVERY_ARGON2_PARALLELISM": _int("ARGON2_PARALLELISM", 4, high=64),
        "RECOVERY_PASSWORD_MIN_LENGTH": 12,
        "RECOVERY_PASSWORD_MAX_LENGTH": 256,
        # Codes and limits.
        "RECOVERY_CODE_TTL_MINUTES": 10,
        "RECOVERY_CODE_MAX_TRIES": 5,
        "RECOVERY_CODE_RESEND_SECONDS": 60,
        "RECOVERY_CODE_LOCK_AFTER": 10,
        "RECOVERY_CODE_LOCK_MINUTES": 15,
        "RECOVERY_HARD_LOCK_AFTER": 100,
        "RECOVERY_INVITATION_HOURS": _int("INVITATION_HOURS", 72),
        "RECOVERY_RESET_MINUTES": _int("RESET_MINUTES", 60),
        "RATELIMIT_STORAGE_URI": _env("RATELIMIT_STORAGE_URI", "memory://"),
        # No X-RateLimit-* headers: they cost a storage read on every limited
        # request and tell a browser nothing. A refused request still says when
        # to come back (Retry-After, set by errors.py on the 429).
        "RATELIMIT_HEADERS_ENABLED": False,
        # How many proxies in front of the app set X-Forwarded-For/-Proto/-Host
        # (nginx alone: 1; a load balancer, then nginx: 2). 0 trusts none.
        "RECOVERY_TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0, low=0, high=10),
        # How many processes serve the app on this host; gunicorn.conf.py sets it
        # to the number of workers it starts (README "Production", docs/deploy.md).
        "RECOVERY_WEB_WORKERS": _int("WEB_WORKERS", 1, high=256),
        # Sign-in limits (per client address through Flask-Limiter; per account on the user row).
        "RECOVERY_LIMIT_SIGN_IN": _rate_limit("LIMIT_SIGN_IN", "10 per minute;100 per hour"),
        "RECOVERY_LIMIT_CODE_CHECK": _rate_limit("LIMIT_CODE_CHECK", "10 per minute;100 per hour"),
        "RECOVERY_LIMIT_CODE_SEND": _rate_limit("LIMIT_CODE_SEND", "5 per minute;30 per hour"),
        "RECOVERY_PASSWORD_FREE_TRIES": _int("PASSWORD_FREE_TRIES", 5, low=0, high=1000),
        "RECOVERY_PASSWORD_MAX_DELAY_SECONDS": _int("PASSWORD_MAX_DELAY_SECONDS", 300),
        "RECOVERY_SUSPICIOUS_AFTER": _int("SUSPICIOUS_AFTER", 3, high=1000),
        "RECOVERY_PHONE_REGION": _env("PHONE_REGION", "JP"),
        # Recovery cases and documents.
        "RECOVERY_SLA_HOURS": _int("SLA_HOURS", 12),
        "RECOVERY_AT_RISK_SHARE": 0.75,
        # How often an open case page asks where the case stands (one indexed statement each time).
        "RECOVERY_STANDING_POLL_SECONDS": _int("STANDING_POLL_SECONDS", 20),
        "RECOVERY_REQUIRE_SELFIE": _bool("REQUIRE_SELFIE", True),
        "RECOVERY_DOCUMENT_TYPES": parse_document_types(_env("DOCUMENT_TYPES", DEFAULT_DOCUMENT_TYPES)),
        "RECOVERY_MAX_UPLOAD_MB": max_upload_mb,
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH_MB", 40) * 1024 * 1024,
        "MAX_FORM_MEMORY_SIZE": 1024 * 1024,
        "RECOVERY_MAX_IMAGE_PIXELS": _int("MAX_IMAGE_PIXELS", 50_000_000, low=10_000, high=1_000_000_000),
        "RECOVERY_MIN_IMAGE_WIDTH": _int("MIN_IMAGE_WIDTH", 800, high=20_000),
        "RECOVERY_MIN_IMAGE_HEIGHT": _int("MIN_IMAGE_HEIGHT", 500, high=20_000),
        "RECOVERY_MAX_PDF_PAGES": _int("MAX_PDF_PAGES", 10, high=1000),
        "RECOVERY_RETENTION_DAYS": _int("RETENTION_DAYS", 30),
        "RECOVERY_NEEDS_INFO_DAYS": _int("NEEDS_INFO_DAYS", 7),
        "RECOVERY_STALE_CLAIM_MINUTES": _int("STALE_CLAIM_MINUTES", 60),
        # Account users, invitations and password resets (ASVS 2.4.1): how many
        # e-mails one address, one seller account or one client address may cause.
        "RECOVERY_RESET_LIMIT_PER_ADDRESS": _rate_limit("RESET_LIMIT_PER_ADDRESS", "5 per hour"),
        "RECOVERY_RESET_LIMIT_PER_CLIENT": _rate_limit("RESET_LIMIT_PER_CLIENT", "30 per hour"),
        "RECOVERY_INVITE_LIMIT_PER_ADDRESS": _rate_limit("INVITE_LIMIT_PER_ADDRESS", "3 per day"),
        "RECOVERY_INVITE_LIMIT_PER_ACCOUNT": _rate_limit("INVITE_LIMIT_PER_ACCOUNT", "20 per day"),
        "RECOVERY_PASSWORD_CHANGE_LIMIT": _rate_limit("PASSWORD_CHANGE_LIMIT", "10 per hour"),
        # Recovery intake: attempts to open a case or send documents (every POST
        # counts: each one decodes up to three uploads), per address and per user.
        "RECOVERY_CASE_LIMIT_PER_ADDRESS": _rate_limit("CASE_LIMIT_PER_ADDRESS", "30 per hour"),
        "RECOVERY_CASE_LIMIT_PER_USER": _rate_limit("CASE_LIMIT_PER_USER", "15 per hour"),
        # Pre-checks (docs/prechecks.md). Calibrated by bench/precheck.py on the demo's documents:
        # hand-held phone photos (angle, uneven light 70-110 %, blur r 0.4-1.1, noise, JPEG 70-92)
        # and flatbed scans, 1600 x 1200 and 1200 x 1600, and on the demo's seeded bad documents:
        #   sharpness (variance of the Laplacian at a 1000 px long side): clean documents 170-1930,
        #     clean selfies 39-170 (the face is soft); the seeded blurred documents (r 4-7) 1.2-3.2;
        #     a flat photo blurred r=2.5: 16, r=3: 9 -> fail below 15, look closely below 30;
        #   glare (largest blown-out region off the border): clean 0-0.004, seeded glare 0.059-0.130
        #     -> look closely from 0.01, fail from 0.04;
        #   brightness (mean grey): clean 130 or more, seeded dark 20-38 -> fail below 45, look closely below 70;
        #   short side: a 300 dpi scan of a card is about 640 px, clean scans 846 or more -> look closely below 600;
        #   reuse (Hamming distance between 256-bit pHashes): a shrunk, re-saved JPEG copy 0-4, a crop of
        #     0.3% per side 0-8, 0.5% 0-16, 1% 8-26; different passports of one layout photographed by
        #     phone 12 or more (3 of 1,770 pairs within 16, none within 10), other documents 28 or more,
        #     selfies 88 or more -> a match is 10 or less.
        "RECOVERY_PRECHECK_SHARPNESS_FAIL": _float("PRECHECK_SHARPNESS_FAIL", 15.0, low=0.0, high=100_000.0),
        "RECOVERY_PRECHECK_SHARPNESS_REVIEW": _float("PRECHECK_SHARPNESS_REVIEW", 30.0, low=0.0, high=100_000.0),
        "RECOVERY_PRECHECK_GLARE_FAIL": _float("PRECHECK_GLARE_FAIL", 0.04, low=0.0, high=1.0),
        "RECOVERY_PRECHECK_GLARE_REVIEW": _float("PRECHECK_GLARE_REVIEW", 0.01, low=0.0, high=1.0),
        "RECOVERY_PRECHECK_DARK_FAIL": _float("PRECHECK_DARK_FAIL", 45.0, low=0.0, high=255.0),
        "RECOVERY_PRECHECK_DARK_REVIEW": _float("PRECHECK_DARK_REVIEW", 70.0, low=0.0, high=255.0),
        "RECOVERY_PRECHECK_MIN_SHORT_SIDE": _int("PRECHECK_MIN_SHORT_SIDE", 600, high=20_000),
        "RECOVERY_PRECHECK_REUSE_MAX_DISTANCE": _int("PRECHECK_REUSE_MAX_DISTANCE", 10, low=0, high=64),
        "RECOVERY_PRECHECK_BATCH": _int("PRECHECK_BATCH", 20, high=10_000),
        "RECOVERY_PRECHECK_MAX_ATTEMPTS": _int("PRECHECK_MAX_ATTEMPTS", 5, high=100),
        "RECOVERY_PRECHECK_RETRY_MINUTES": _int("PRECHECK_RETRY_MINUTES", 5),
        "RECOVERY_PRECHECK_LEASE_MINUTES": _int("PRECHECK_LEASE_MINUTES", 15),
        # Scheduler.
        "RECOVERY_SCHEDULER": _bool("SCHEDULER", env == "development" or production),
        # One runner at a time: the SQLite lease lasts this long unless renewed;
        # the holder renews it (and records its heartbeat) every heartbeat.
        "RECOVERY_SCHEDULER_LEASE_SECONDS": _int("SCHEDULER_LEASE_SECONDS", 60),
        "RECOVERY_SCHEDULER_HEARTBEAT_SECONDS": _int("SCHEDULER_HEARTBEAT_SECONDS", 15),
        "RECOVERY_SCHEDULER_STANDBY_POLL_SECONDS": _int("SCHEDULER_STANDBY_POLL_SECONDS", 5),
        # /healthz calls the scheduler down when its heartbeat is older than this.
        "RECOVERY_HEALTH_HEARTBEAT_MAX_SECONDS": _int("HEALTH_HEARTBEAT_MAX_SECONDS", 180),
        # Who may read /healthz in detail besides managers: comma-separated networks.
        "RECOVERY_HEALTH_DETAIL_NETWORKS": _networks("HEALTH_DETAIL_NETWORKS", "127.0.0.0/8,::1/128"),
        # Who may read /metrics: these networks (Prometheus' address; loopback by
        # default), or anyone sending "Authorization: Bearer <RECOVERY_METRICS_TOKEN>".
        "RECOVERY_METRICS_NETWORKS": _networks("METRICS_NETWORKS", "127.0.0.0/8,::1/128"),
        "RECOVERY_METRICS_TOKEN": _env("METRICS_TOKEN") or None,
        # Logs: one JSON line per request and per event on stderr (json), or Python's plain lines (text).
        "RECOVERY_LOG_FORMAT": _choice("LOG_FORMAT", "json" if production else "text", ("json", "text")),
        "RECOVERY_LOG_LEVEL": _choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper(),
        # Job intervals (seconds).
        "RECOVERY_JOB_SLA_SWEEP_SECONDS": _int("JOB_SLA_SWEEP_SECONDS", 60),
        "RECOVERY_JOB_STALE_CLAIMS_SECONDS": _int("JOB_STALE_CLAIMS_SECONDS", 300),
        "RECOVERY_JOB_NEEDS_INFO_EXPIRY_SECONDS": _int("JOB_NEEDS_INFO_EXPIRY_SECONDS", 600),
        "RECOVERY_JOB_RETENTION_SECONDS": _int("JOB_RETENTION_SECONDS", 3600),
        "RECOVERY_JOB_ORPHANS_SECONDS": _int("JOB_ORPHANS_SECONDS", 900),
        "RECOVERY_JOB_OUTBOX_SECONDS": _int("JOB_OUTBOX_SECONDS", 30),
        "RECOVERY_JOB_PRECHECKS_SECONDS": _int("JOB_PRECHECKS_SECONDS", 60),
        "RECOVERY_JOB_REPORT_ROLLUPS_SECONDS": _int("JOB_REPORT_ROLLUPS_SECONDS", 600),
        # Sending (README "Sending messages"). Unset hosts and accounts: nothing
        # leaves, every message stays readable with ``flask outbox list``.
        "RECOVERY_SENDER": _env("SENDER"),  # module:Class replacing every sender (tests, special set-ups)
        # Hand each message to its sender right after the commit that queued it;
        # the outbox job retries what failed, and picks up a message nobody
        # handed over once it is this many seconds old.
        "RECOVERY_SEND_AFTER_COMMIT": _bool("SEND_AFTER_COMMIT", True),
        "RECOVERY_OUTBOX_RETRY_AFTER_SECONDS": _int("OUTBOX_RETRY_AFTER_SECONDS", 60),
        # A claim older than this belongs to a sender that died; the row is tried again.
        "RECOVERY_OUTBOX_CLAIM_TIMEOUT_SECONDS": _int("OUTBOX_CLAIM_TIMEOUT_SECONDS", 300),
        # How long a sender keeps trying to record a message the provider has
        # taken while the database is away (a restart, a failover): left claimed,
        # the row would go out a second time once its claim times out.
        "RECOVERY_OUTBOX_RECORD_SECONDS": _int("OUTBOX_RECORD_SECONDS", 30, low=0, high=3600),
        "RECOVERY_SMTP_HOST": _env("SMTP_HOST"),
        "RECOVERY_SMTP_PORT": _int("SMTP_PORT", SMTP_SECURITY[smtp_security], high=65535),
        "RECOVERY_SMTP_USERNAME": _env("SMTP_USERNAME"),
        "RECOVERY_SMTP_PASSWORD": _env("SMTP_PASSWORD"),
        "RECOVERY_SMTP_SECURITY": smtp_security,
        # Extra certificate authorities to trust (a private relay); the system's otherwise.
        "RECOVERY_SMTP_CA_FILE": _env("SMTP_CA_FILE"),
        "RECOVERY_SMTP_TIMEOUT_SECONDS": _float("SMTP_TIMEOUT_SECONDS", 10.0, low=0.1, high=300.0),
        "RECOVERY_MAIL_FROM": _env("MAIL_FROM", "no-reply@recovery-desk.invalid"),
        "RECOVERY_TWILIO_ACCOUNT_SID": _env("TWILIO_ACCOUNT_SID"),
        "RECOVERY_TWILIO_AUTH_TOKEN": _env("TWILIO_AUTH_TOKEN"),
        # The caller ID and SMS sender: an E.164 number bought from Twilio, or a
        # Messaging Service (which can send with an alphanumeric sender ID).
        "RECOVERY_TWILIO_FROM": _env("TWILIO_FROM"),
        "RECOVERY_TWILIO_MESSAGING_SERVICE_SID": _env("TWILIO_MESSAGING_SERVICE_SID"),
        # Only for the local stand-in the tests and the bench run; unset in real use.
        "RECOVERY_TWILIO_API_BASE_URL": _env("TWILIO_API_BASE_URL"),
        "RECOVERY_TWILIO_TIMEOUT_SECONDS": _float("TWILIO_TIMEOUT_SECONDS", 10.0, low=0.1, high=300.0),
        # Managers' reports: the longest date range one page may cover.
        "RECOVERY_REPORT_MAX_DAYS": 366,
        # The time zones whose calendar days the reports keep daily rollups for
        # (a manager in another zone gets figures computed from the cases).
        "RECOVERY_REPORT_ROLLUP_ZONES": _zones("REPORT_ROLLUP_ZONES", "Asia/Tokyo,UTC"),
        # Languages.
        "BABEL_DEFAULT_LOCALE": "ja",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "RECOVERY_LANGUAGES": ("ja", "en"),
        "RECOVERY_DEFAULT_TIMEZONES": {"ja": "Asia/Tokyo", "en": "UTC"},
        "WTF_CSRF_TIME_LIMIT": None,
    }
    if env == "testing":
        # Cheap hashes keep the suite fast; production never runs with these.
        config.update(
            RECOVERY_ARGON2_TIME_COST=1,
            RECOVERY_ARGON2_MEMORY_KIB=8,
            RECOVERY_ARGON2_PARALLELISM=1,
            RECOVERY_SCHEDULER=False,
            # Tests run inside one rolled-back transaction; those about sending
            # turn this on with an app whose commits are real.
            RECOVERY_SEND_AFTER_COMMIT=False,
        )
    config.update(overrides)
    _refuse_unshared_limits(config)
    _refuse_unusable_text(config)
    return config


def _refuse_unusable_text(config: dict) -> None:
    """Text settings the app would only trip over later, on a request (a 500
    on the security page, at intake, for every phone number): refused at start,
    naming the variable."""
    try:
        base_url = urlsplit(str(config["RECOVERY_BASE_URL"]))
        base_url.port  # noqa: B018 - reading it checks it
        usable = base_url.scheme in ("http", "https") and bool(base_url.hostname)
    except ValueError:  # an unclosed [ of an IPv6 address, a port that is no number or out of range
        usable = False
    if not usable:
        raise ConfigError(
            f"RECOVERY_BASE_URL {config['RECOVERY_BASE_URL']!r} is not an http(s) address with a host "
            "(and a port from 1 to 65535 if one is given), e.g. https://recovery.example.com"
        )
    try:
        if config.get("RECOVERY_VAULT_KEY"):
            vault.decode_key(config["RECOVERY_VAULT_KEY"])
    except vault.VaultError as exc:
        raise ConfigError(f"RECOVERY_VAULT_KEY: {exc} (url-safe base64)") from None
    if not 1 <= len(str(config["RECOVERY_VAULT_KEY_ID"])) <= 20:
        raise ConfigError("RECOVERY_VAULT_KEY_ID must be 1 to 20 characters (it is stored with every document)")
    try:
        vault.old_keys(os.environ.get("RECOVERY_VAULT_OLD_KEYS"))
    except vault.VaultError as exc:
        raise ConfigError(f"RECOVERY_VAULT_OLD_KEYS: {exc}") from None
    if config["RECOVERY_PHONE_REGION"] not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(
            f"RECOVERY_PHONE_REGION {config['RECOVERY_PHONE_REGION']!r} is not a region code phone numbers know "
            "(two capital letters, e.g. JP)"
        )
    upload_dir = Path(config["RECOVERY_UPLOAD_DIR"])
    if upload_dir.exists() and not upload_dir.is_dir():
        raise ConfigError(f"RECOVERY_UPLOAD_DIR {str(upload_dir)!r} is a file, not a folder")


def _refuse_unshared_limits(config: dict) -> None:
    """In-memory rate-limit counters belong to one process: with several
    workers each would keep its own count and a limit would allow workers
    times as many attempts. Production needs a shared store then (Redis)."""
    if (
        config["RECOVERY_ENV"] == "production"
        and config["RECOVERY_WEB_WORKERS"] > 1
        and str(config["RATELIMIT_STORAGE_URI"]).startswith("memory://")
    ):
        raise ConfigError(
            f"RECOVERY_RATELIMIT_STORAGE_URI is memory:// but {config['RECOVERY_WEB_WORKERS']} workers serve the app "
            "(RECOVERY_WEB_WORKERS): each would count attempts on its own. Use a shared store such as "
            "redis://127.0.0.1:6379/0."
        )
