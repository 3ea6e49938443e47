"""Fixtures for the pre-check tests: stored documents on real cases."""

from __future__ import annotations

import io

import pytest
from PIL import Image, UnidentifiedImageError

from recovery_app.documents import storage
from recovery_app.extensions import db
from recovery_app.models import Document

from . import images


class DocumentFactory:
    """Stores bytes the way intake does (encrypted, two-phase) and adds the Document row."""

    def add(self, case, data: bytes, *, side: str = "front", content_type: str = "image/jpeg", round_: int = 1,
            now=None) -> Document:
        staged = storage.stage(data)
        width = height = None
        if content_type.startswith("image/"):
            try:
                with Image.open(io.BytesIO(data)) as image:
                    width, height = image.size
            except UnidentifiedImageError:  # a broken file, on purpose
                pass
        document = Document(case_id=case.id, round=round_, side=side, storage_key=staged.storage_key,
                            key_id=staged.key_id, sha256=staged.sha256, size=staged.size, content_type=content_type,
                            width=width, height=height, created_at=now or case.submitted_at)
        db.session.add(document)
        db.session.flush()
        storage.commit_staged([staged])
        db.session.expire(case, ["documents"])
        return document


@pytest.fixture
def docs(app):
    return DocumentFactory()


@pytest.fixture
def seller(make):
    def build(name: str = "Taro Yamada"):
        user = make.user(enrolled=False)
        user.romanised_name = name
        db.session.flush()
        return user

    return build


def passport_photo(surname="YAMADA", given_names="TARO", number="TK1234567", *, seed=2, expiry="320101",
                   broken_check_digit=False) -> bytes:
    lines = images.mrz_lines(surname=surname, given_names=given_names, number=number, expiry=expiry)
    if broken_check_digit:
        lines = images.break_check_digit(lines)
    return images.jpeg(images.photo_of(images.passport_page(lines, seed=seed), seed=seed))
