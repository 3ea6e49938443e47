"""Fixtures for the reviewers' side: staff, cases with real document files, signed-in clients."""

from __future__ import annotations

import io
import secrets
from datetime import timedelta

import pytest
from PIL import Image
from pypdf import PdfWriter

from recovery_app.documents import storage
from recovery_app.extensions import db
from recovery_app.models import Document, RecoveryCode, TrustedDevice
from recovery_app.models.base import utcnow


def png_bytes(width: int = 900, height: int = 600, colour=(30, 90, 160)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes(width: int = 900, height: int = 600, colour=(200, 180, 120)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def pdf_bytes(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


CONTENT = {"image/png": png_bytes, "image/jpeg": jpeg_bytes, "application/pdf": pdf_bytes}


class ReviewFactory:
    """Cases the way intake leaves them: documents encrypted on disk, rows in the database."""

    def __init__(self, make, now):
        self.make = make
        self.now = now
        # Strong references: the session's identity map holds objects weakly, and
        # test-only attributes (the TOTP seed) live on these very objects.
        self.kept: list = []

    def document(self, case, side: str = "front", content_type: str = "image/png", *, content: bytes | None = None,
                 round: int = 1) -> Document:
        data = content if content is not None else CONTENT[content_type]()
        staged = storage.stage(data)
        document = Document(case_id=case.id, round=round, side=side, storage_key=staged.storage_key,
                            key_id=staged.key_id, sha256=staged.sha256, size=staged.size, content_type=content_type,
                            width=900 if content_type != "application/pdf" else None,
                            height=600 if content_type != "application/pdf" else None,
                            pages=1 if content_type == "application/pdf" else None,
                            display_name=f"{side}.bin", created_at=case.submitted_at)
        db.session.add(document)
        db.session.flush()
        storage.commit_staged([staged])
        db.session.refresh(case)
        return document

    def seller(self, **kwargs):
        """An enrolled seller with recovery codes and a trusted device: everything an approval removes."""
        seller = self.make.user("seller_owner", **kwargs)
        db.session.add(RecoveryCode(user_id=seller.id, code_hash="argon2-hash-placeholder", created_at=self.now))
        current = utcnow()
        db.session.add(TrustedDevice(user_id=seller.id, token_hash=secrets.token_hex(32), browser="Firefox",
                                     address="198.51.100.4", created_at=current, last_seen_at=current,
                                     expires_at=current + timedelta(days=90)))
        db.session.flush()
        self.kept.append(seller)
        return seller

    def case(self, seller=None, *, submitted_at=None, documents=(("front", "image/png"), ("back", "image/jpeg"),
                                                               ("selfie", "image/jpeg")), **kwargs):
        seller = seller or self.seller()
        case = self.make.case(seller, submitted_at=submitted_at or self.now, **kwargs)
        for side, content_type in documents:
            self.document(case, side, content_type)
        db.session.commit()  # kept until the test ends: a refused action rolls back only itself
        return case


@pytest.fixture
def english(app):
    """A request context in English, for calling services directly and reading their messages."""
    with app.test_request_context(headers={"Accept-Language": "en"}):
        yield


@pytest.fixture
def review(make, now):
    return ReviewFactory(make, now)


@pytest.fixture
def staff_client(app, auth):
    """A new test client signed in as ``user``."""

    def sign_in(user):
        client = app.test_client()
        auth.sign_in(client, user)
        db.session.commit()  # kept until the test ends: a refused action rolls back only itself
        return client

    return sign_in


ALL_CHECKS = ["type_matches", "not_expired", "name_matches", "photo_clear", "selfie_matches"]
