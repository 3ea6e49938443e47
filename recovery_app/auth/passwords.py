"""Passwords: argon2id hashing and the rules a new password must meet.

Rules (NIST SP 800-63B, ASVS 6.2): at least 12 characters and at most 256,
any characters, never truncated or case-folded; refused when it is a common or
breached password (zxcvbn's list of 30,000 leaked passwords), the user's
e-mail address, or built around the product's, the marketplace's or the
account's name.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app
from flask_babel import lazy_gettext as _l

CONTEXT_WORDS_FILE = Path(__file__).with_name("context_words.txt")


def _hasher() -> PasswordHasher:
    config = current_app.config
    return _hasher_for(
        config["RECOVERY_ARGON2_TIME_COST"], config["RECOVERY_ARGON2_MEMORY_KIB"], config["RECOVERY_ARGON2_PARALLELISM"]
    )


@lru_cache(maxsize=4)
def _hasher_for(time_cost: int, memory: int, parallelism: int) -> PasswordHasher:
    # Building a hasher checks the parameters against the platform, which costs
    # about a millisecond: once per setting, not twice per sign-in.
    return PasswordHasher(time_cost=time_cost, memory_cost=memory, parallelism=parallelism)


def hash_password(password: str) -> str:
    return _hasher().hash(password)


@lru_cache(maxsize=4)
def _dummy_hash(time_cost: int, memory: int, parallelism: int) -> str:
    return _hasher_for(time_cost, memory, parallelism).hash("not a password")


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash (unknown e-mail) do the same work anyway,
    so that a wrong e-mail and a wrong password take the same time."""
    config = current_app.config
    target = password_hash or _dummy_hash(
        config["RECOVERY_ARGON2_TIME_COST"], config["RECOVERY_ARGON2_MEMORY_KIB"], config["RECOVERY_ARGON2_PARALLELISM"]
    )
    try:
        ok = _hasher().verify(target, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


@lru_cache(maxsize=1)
def _shipped_context_words() -> tuple[str, ...]:
    lines = CONTEXT_WORDS_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(w.strip().lower() for w in lines if w.strip() and not w.startswith("#"))


def context_words(extra: tuple[str, ...] = ()) -> set[str]:
    config = current_app.config
    words = set(_shipped_context_words())
    for name in (config["RECOVERY_PRODUCT_NAME"], config["RECOVERY_MARKETPLACE_NAME"], *extra):
        if name:
            words.add(name.lower())
            words.update(part for part in name.lower().split() if len(part) >= 4)
    return {w for w in words if len(w) >= 4}


def password_problems(password: str, *, email: str = "", account_name: str = "") -> list[str]:
    """Why ``password`` may not be used, as messages for the form (empty when fine)."""
    config = current_app.config
    minimum, maximum = config["RECOVERY_PASSWORD_MIN_LENGTH"], config["RECOVERY_PASSWORD_MAX_LENGTH"]
    if len(password) < minimum:
        return [
            str(
                _l(
                    "Use at least %(n)d characters. A few unrelated words make a long password that is easy to "
                    "remember.",
                    n=minimum,
                )
            )
        ]
    if len(password) > maximum:
        return [str(_l("Use at most %(n)d characters.", n=maximum))]
    lowered = password.lower()
    problems = []
    if lowered in common_passwords():
        problems.append(
            str(_l("This password appears in lists of leaked passwords that attackers try first. Choose another."))
        )
    local_part = email.lower().partition("@")[0]
    if email and (lowered == email.lower() or (len(local_part) >= 4 and local_part in lowered)):
        problems.append(str(_l("Do not use your e-mail address in your password.")))
    squeezed = "".join(ch for ch in lowered if ch.isalnum())
    extra = (account_name,) if account_name else ()
    if any(word.replace(" ", "") in squeezed for word in context_words(extra)):
        problems.append(
            str(
                _l(
                    "Do not build your password around the name of this service, the marketplace or your "
                    "business: attackers try those first."
                )
            )
        )
    return problems
