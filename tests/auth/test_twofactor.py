"""Second-factor primitives: RFC test vectors, replay, expiry, binding, hashing."""

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from recovery_app.auth import twofactor
from recovery_app.models import RecoveryCode
from tests.helpers import last_code, outbox_messages

SEED = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of ASCII "12345678901234567890"


@pytest.mark.parametrize(
    "counter, code",
    list(
        enumerate(["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"])
    ),
)
def test_rfc4226_appendix_d_vectors(counter, code):
    assert twofactor.hotp_matches(SEED, counter, code)


@pytest.mark.parametrize(
    "unix, code",
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_rfc6238_appendix_b_sha1_vectors(unix, code):
    at = datetime.fromtimestamp(unix, tz=UTC)
    assert twofactor.match_totp_step(SEED, code, at, digits=8, window=0) == unix // 30


def test_totp_accepts_one_step_of_drift_but_not_two(app, make, now):
    user = make.user()
    method = user_method = twofactor.confirmed_methods(user)[0]
    totp = pyotp.TOTP(user._test_totp_seed)
    assert twofactor.verify_totp(method, totp.at(now - timedelta(seconds=30)), now)
    assert not twofactor.verify_totp(user_method, totp.at(now - timedelta(seconds=90)), now)


def test_replayed_totp_code_is_refused(app, make, now):
    # ASVS 6.5.1: a TOTP code succeeds once
    user = make.user()
    method = twofactor.confirmed_methods(user)[0]
    code = pyotp.TOTP(user._test_totp_seed).at(now)
    assert twofactor.verify_totp(method, code, now)
    assert not twofactor.verify_totp(method, code, now + timedelta(seconds=5))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("123 456", "123456"),
        ("123-456", "123456"),
        ("12345", None),
        ("12a456", None),
        # A Japanese input method types full-width digits and dashes, or the long-vowel mark for a dash.
        ("１２３４５６", "123456"),
        ("１２３　４５６", "123456"),
        ("１２３－４５６", "123456"),
        ("１２３ー４５６", "123456"),
        ("１２３４５", None),
        ("٤٥٦١٢٣", None),  # digits of another script are not ASCII digits even after NFKC
        ("", None),
    ],
)
def test_codes_are_normalised_then_must_be_six_digits(text, expected):
    assert twofactor.normalise_code(text) == expected


@pytest.mark.parametrize("text", ["abcde-23456", "ABCDE 23456", "ａｂｃｄｅ－２３４５６", "ＡＢＣＤＥー２３４５６"])
def test_recovery_codes_typed_any_of_these_ways_are_the_same_code(text):
    assert twofactor.normalise_recovery_code(text) == "abcde-23456"


def test_sms_code_is_bound_to_its_challenge_and_used_once(app, make, now):
    # ASVS 6.6.2, 6.5.1
    user = make.user()
    twofactor.send_code(user, phone_e164="+819012345678", channel="sms", purpose="sign_in", challenge_id="c1", now=now)
    code = last_code("+819012345678")
    assert twofactor.check_sent_code(user, challenge_id="c2", code=code, now=now) is None
    assert twofactor.check_sent_code(user, challenge_id="c1", code=code, now=now) is not None
    assert twofactor.check_sent_code(user, challenge_id="c1", code=code, now=now) is None


def test_sms_code_expires_after_ten_minutes(app, make, now):
    # ASVS 6.5.5, NIST out-of-band codes ≤ 10 minutes
    user = make.user()
    twofactor.send_code(user, phone_e164="+819012345678", channel="sms", purpose="sign_in", challenge_id="c", now=now)
    code = last_code("+819012345678")
    assert twofactor.check_sent_code(user, challenge_id="c", code=code, now=now + timedelta(minutes=10)) is None


def test_sms_code_allows_five_tries(app, make, now):
    user = make.user()
    twofactor.send_code(user, phone_e164="+819012345678", channel="sms", purpose="sign_in", challenge_id="c", now=now)
    code = last_code("+819012345678")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert twofactor.check_sent_code(user, challenge_id="c", code=wrong, now=now) is None
    assert twofactor.check_sent_code(user, challenge_id="c", code=code, now=now) is None


def test_resend_is_throttled_for_sixty_seconds(app, make, now):
    # ASVS 6.6.3
    user = make.user()
    kwargs = dict(phone_e164="+819012345678", channel="sms", purpose="sign_in", challenge_id="c")
    twofactor.send_code(user, now=now, **kwargs)
    with pytest.raises(twofactor.CodeError) as raised:
        twofactor.send_code(user, now=now + timedelta(seconds=30), **kwargs)
    assert raised.value.reason == "resend_too_soon" and 0 < raised.value.wait_seconds <= 31
    twofactor.send_code(
        user, now=now + timedelta(seconds=61), channel="voice", **{k: v for k, v in kwargs.items() if k != "channel"}
    )
    assert [m.channel for m in outbox_messages(to="+819012345678")] == ["sms", "voice"]


def test_codes_never_go_by_email(app, make, now):
    user = make.user()
    twofactor.send_code(user, phone_e164="+819012345678", channel="sms", purpose="sign_in", challenge_id="c", now=now)
    assert outbox_messages(channel="email") == []


def test_recovery_codes_are_hashed_random_and_single_use(app, make, now, db):
    # ASVS 6.5.1, 6.5.2, 6.5.3, 6.5.4
    user = make.user()
    codes = twofactor.generate_recovery_codes(user, now)
    assert len(set(codes)) == 10
    stored = db.session.query(RecoveryCode).filter_by(user_id=user.id).all()
    assert all(row.code_hash.startswith("$argon2id$") and codes[0] not in row.code_hash for row in stored)
    assert twofactor.use_recovery_code(user, codes[3].upper().replace("-", " "), now)
    assert not twofactor.use_recovery_code(user, codes[3], now)
    assert twofactor.remaining_recovery_codes(user) == 9


def test_trusted_device_token_works_only_for_its_user(app, make, now):
    owner, other = make.user(), make.user()
    token = twofactor.trust_device(owner, now, browser="Firefox", address="192.0.2.1")
    assert twofactor.trusted_device_for(owner, token, now) is not None
    assert twofactor.trusted_device_for(other, token, now) is None
    assert twofactor.trusted_device_for(owner, token + "x", now) is None
    assert twofactor.trusted_device_for(owner, token, now + timedelta(days=91)) is None
    twofactor.revoke_devices(owner, now)
    assert twofactor.trusted_device_for(owner, token, now) is None


def test_totp_seed_is_encrypted_at_rest(app, make):
    user = make.user()
    method = twofactor.confirmed_methods(user)[0]
    assert user._test_totp_seed.encode() not in method.secret_encrypted
    assert twofactor.totp_seed(method) == user._test_totp_seed
