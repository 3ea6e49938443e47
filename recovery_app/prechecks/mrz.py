"""Passport machine-readable zone: read with PassportEye (Tesseract OCR), every
check digit validated with the ``mrz`` package, then compared with the case.

PassportEye corrects OCR look-alikes field by field (``O``/``0`` in a digit
field, for example); the TD3 lines are rebuilt from its corrected fields and
handed to ``mrz``'s checker, which names each check digit that does not hold.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime

from mrz.checker.td3 import TD3CodeChecker
from passporteye import read_mrz

TD3_LENGTH = 44
NAME_FIELD_LENGTH = 39


@dataclass
class MrzReading:
    found: bool
    lines: list[str] = field(default_factory=list)
    surname: str = ""
    given_names: str = ""
    nationality: str = ""
    birth_date: str = ""  # ISO date
    expiry_date: str = ""  # ISO date
    document_type: str = ""
    failed_check_digits: list[str] = field(default_factory=list)
    # OCR gave the second line a wrong length: fields are shifted, so check
    # digits prove nothing either way.
    garbled: bool = False


def read(image_bytes: bytes, today: date) -> MrzReading:
    """Find and read a TD3 (passport) MRZ in an image file's bytes."""
    with warnings.catch_warnings():
        # PassportEye calls scikit-image APIs that announce their own deprecation.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        found = read_mrz(io.BytesIO(image_bytes))
    if found is None or found.mrz_type != "TD3":
        return MrzReading(found=False)
    raw_lines = (found.aux.get("raw_text") or "").splitlines()
    garbled = len(raw_lines) != 2 or len(raw_lines[1]) != TD3_LENGTH
    lines = _td3_lines(found)
    checker = TD3CodeChecker("\n".join(lines), check_expiry=False)
    fields = checker.fields()
    return MrzReading(
        found=True,
        lines=lines,
        surname=fields.surname,
        given_names=fields.name,
        nationality=fields.nationality,
        birth_date=_as_date(fields.birth_date, today, future=False),
        expiry_date=_as_date(fields.expiry_date, today, future=True),
        document_type=fields.document_type,
        failed_check_digits=[name for name, ok in checker.report.falses],
        garbled=garbled,
    )


def _td3_lines(found) -> list[str]:
    first = found.aux["text"].splitlines()[0] if found.aux.get("text") else ""
    first = (first + "<" * TD3_LENGTH)[:TD3_LENGTH]
    second = "".join([
        _fit(found.number, 9), _fit(found.check_number, 1), _fit(found.nationality, 3),
        _fit(found.date_of_birth, 6), _fit(found.check_date_of_birth, 1), _fit(found.sex, 1),
        _fit(found.expiration_date, 6), _fit(found.check_expiration_date, 1),
        _fit(found.personal_number, 14), _fit(found.check_personal_number, 1), _fit(found.check_composite, 1),
    ])
    return [first, second]


def _fit(value: str, length: int) -> str:
    return ((value or "") + "<" * length)[:length]


def _as_date(yymmdd: str, today: date, *, future: bool) -> str:
    """YYMMDD to ISO. Expiry dates are this century; birth dates are in the past."""
    if not re.fullmatch(r"\d{6}", yymmdd or ""):
        return ""
    yy, mm, dd = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    century = 2000 if future or yy <= today.year % 100 else 1900
    try:
        return date(century + yy, mm, dd).isoformat()
    except ValueError:
        return ""


def is_expired(reading: MrzReading, submitted_at: datetime) -> bool:
    return bool(reading.expiry_date) and date.fromisoformat(reading.expiry_date) < submitted_at.date()


def name_tokens(text: str) -> list[str]:
    """Upper-case Latin letters only: accents folded, ``<`` fillers, spaces and
    punctuation all separate words."""
    folded = unicodedata.normalize("NFKD", text or "")
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).upper()
    return [token for token in re.split(r"[^A-Z]+", folded) if token]


def name_matches(reading: MrzReading, romanised_name: str) -> bool:
    """The MRZ name against the name the user gave, in any order (family name
    first or last). Long names are cut short in the MRZ, so a truncated last
    word may be a prefix of the user's word."""
    mrz_words = name_tokens(f"{reading.surname} {reading.given_names}")
    user_words = name_tokens(romanised_name)
    if not mrz_words or not user_words or len(mrz_words) != len(user_words):
        return False
    # The name field holds 39 characters: surname, "<<", given names joined by "<".
    field_full = len(reading.surname) + 2 + len(reading.given_names) >= NAME_FIELD_LENGTH
    remaining = list(user_words)
    for index, word in enumerate(mrz_words):
        truncated = field_full and index == len(mrz_words) - 1
        match = next((u for u in remaining if u == word or (truncated and u.startswith(word))), None)
        if match is None:
            return False
        remaining.remove(match)
    return True
