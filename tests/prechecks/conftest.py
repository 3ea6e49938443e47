"""Fixtures for the pre-check tests: sellers with a romanised name, passport photos (stored with ``make.document``)."""

from __future__ import annotations

import pytest

from recovery_app.extensions import db

from . import images


@pytest.fixture
def seller(make):
    def build(name: str = "Taro Yamada"):
        user = make.user(enrolled=False)
        user.romanised_name = name
        db.session.flush()
        return user

    return build


def passport_photo(
    surname="YAMADA", given_names="TARO", number="TK1234567", *, seed=2, expiry="320101", broken_check_digit=False
) -> bytes:
    lines = images.mrz_lines(surname=surname, given_names=given_names, number=number, expiry=expiry)
    if broken_check_digit:
        lines = images.break_check_digit(lines)
    return images.jpeg(images.photo_of(images.passport_page(lines, seed=seed), seed=seed))
