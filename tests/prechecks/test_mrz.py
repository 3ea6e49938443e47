"""Passport MRZ: rendered from the ``mrz`` generator in a monospace font, read
back from the band found in the photo, check digits validated with ``mrz``."""

from datetime import UTC, date

import pytest

from recovery_app.prechecks import mrz

from . import images
from .conftest import passport_photo

TODAY = date(2026, 3, 2)


@pytest.fixture(scope="module")
def good_reading():
    return mrz.read(passport_photo(), TODAY)


def test_generated_passport_mrz_reads_back_exactly(good_reading):
    expected = images.mrz_lines(surname="YAMADA", given_names="TARO", number="TK1234567")
    assert good_reading.found and not good_reading.garbled
    assert good_reading.lines == expected
    assert good_reading.failed_check_digits == []
    assert (good_reading.surname, good_reading.given_names, good_reading.nationality) == ("YAMADA", "TARO", "JPN")
    assert (good_reading.birth_date, good_reading.expiry_date) == ("1990-01-01", "2032-01-01")


def test_wrong_check_digit_is_named():
    reading = mrz.read(passport_photo(broken_check_digit=True), TODAY)
    assert reading.found and not reading.garbled
    assert "document number hash" in reading.failed_check_digits


def test_page_without_mrz_is_not_found(app):
    reading = mrz.read(images.jpeg(images.photo_of(images.card(1), seed=1)), TODAY)
    assert reading.found is False


def test_expiry_is_judged_against_the_submission_day(good_reading):
    from datetime import datetime

    assert not mrz.is_expired(good_reading, datetime(2031, 12, 31, 23, 0, tzinfo=UTC))
    assert mrz.is_expired(good_reading, datetime(2032, 1, 2, 0, 0, tzinfo=UTC))


@pytest.mark.parametrize("given", ["Taro Yamada", "YAMADA Taro", "  yamada   taro ", "Tarō Yamada"])
def test_name_matches_in_any_order_case_and_spacing(good_reading, given):
    assert mrz.name_matches(good_reading, given)


@pytest.mark.parametrize("given", ["Hanako Yamada", "Taro", "Taro Jiro Yamada", "", "山田太郎"])
def test_different_name_does_not_match(good_reading, given):
    assert not mrz.name_matches(good_reading, given)


def test_truncated_mrz_name_matches_the_full_name():
    # 35 + "<<" + 2 letters fill the 39-character name field: "HUBERT" was cut to "HU".
    reading = mrz.MrzReading(found=True, surname="WOLFESCHLEGELSTEINHAUSENBERGERDORFF", given_names="HU")
    assert mrz.name_matches(reading, "Hubert Wolfeschlegelsteinhausenbergerdorff")
    short = mrz.MrzReading(found=True, surname="YAMADA", given_names="TA")
    assert not mrz.name_matches(short, "Taro Yamada")


def test_name_tokens_fold_fillers_and_accents():
    assert mrz.name_tokens("SMITH<<JOHN<PAUL") == ["SMITH", "JOHN", "PAUL"]
    assert mrz.name_tokens("Zoë O'Neil-Brown") == ["ZOE", "O", "NEIL", "BROWN"]


def test_a_misread_document_number_is_repaired_only_when_its_check_digits_prove_it():
    lines = images.mrz_lines(surname="ITO", given_names="HINA", number="TK1234567")
    misread = [lines[0].replace("<JPN", "SIPN", 1), "1" + lines[1][1:10] + "IPN" + lines[1][13:]]
    assert mrz._repair(misread) == lines  # T read as 1, J as I (and its filler as S)
    forged = images.break_check_digit(lines)
    assert mrz._repair(forged) == forged  # a wrong digit stays wrong: the last check digit refuses the swap


@pytest.mark.parametrize("read", ["INOQUE", "INOU", "INOUEE", "INOUESSS"])
def test_a_name_read_with_one_letter_wrong_still_matches(read):
    reading = mrz.MrzReading(found=True, surname=read, given_names="YUNA")
    assert mrz.name_matches(reading, "Yuna Inoue")


@pytest.mark.parametrize("read", ["INADA", "UENO", "INOUYEE"])
def test_a_different_name_is_not_taken_for_a_misread(read):
    reading = mrz.MrzReading(found=True, surname=read, given_names="YUNA")
    assert not mrz.name_matches(reading, "Yuna Inoue")
