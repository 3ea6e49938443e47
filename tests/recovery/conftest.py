"""Fixtures for the recovery intake: realistic test documents made with Pillow
and pypdf, a seller at the password step, and helpers that look at what was
stored (rows and files)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from recovery_app.extensions import db as _db
from recovery_app.models import Case, Document
from tests.factories import bomb_png, id_card, jpeg_bytes


@pytest.fixture(scope="session")
def documents():
    """Cached good test files: front, back, selfie (all different pictures)."""
    return {
        "front": jpeg_bytes(id_card(seed=11, label="DRIVER LICENSE")),
        "back": jpeg_bytes(id_card(seed=12, label="REVERSE")),
        "selfie": jpeg_bytes(id_card(900, 1200, seed=13, label="SELFIE")),
    }


@pytest.fixture(scope="session")
def bomb():
    return bomb_png()


@pytest.fixture
def seller(make, auth, client):
    """A seller owner who lost their phone and passed the password step in ``client``."""
    user = make.user(locale="ja")
    auth.fast_password_step(client, user)
    return user


def file_field(data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg"):
    return (io.BytesIO(data), name, content_type)


def form_for(document_type: str = "drivers_licence", *, consent: bool = True, **files) -> dict:
    data: dict = {"document_type": document_type}
    if consent:
        data["consent"] = "y"
    for side, value in files.items():
        if value is not None:
            data[side] = value if isinstance(value, (tuple, list)) else file_field(value, f"{side}.jpg")
    return data


def full_form(documents, document_type: str = "drivers_licence", **overrides) -> dict:
    files = {"front": documents["front"], "back": documents["back"], "selfie": documents["selfie"]}
    if document_type == "passport":
        files.pop("back")
    files.update(overrides)
    return form_for(document_type, **files)


def case_count() -> int:
    return _db.session.execute(select(func.count()).select_from(Case)).scalar_one()


def document_count() -> int:
    return _db.session.execute(select(func.count()).select_from(Document)).scalar_one()


def stored_files(app) -> list[Path]:
    root = Path(app.config["RECOVERY_UPLOAD_DIR"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
def nothing_changed(app):
    """Call after a refused request: no case, no document row, no document in
    place. Files that passed may wait, staged and encrypted, for the seller's
    next try (tests/recovery/test_kept_files.py); nothing else is on disk."""

    def check():
        assert case_count() == 0
        assert document_count() == 0
        assert [path for path in stored_files(app) if path.suffix != ".tmp"] == []

    return check


def send(client, url: str, data: dict, *, csrf: bool | str = True, headers: dict | None = None):
    """Post ``data`` as multipart/form-data built in memory (as a browser would
    send it), with the page's CSRF token unless ``csrf`` says otherwise.

    The body is encoded here rather than by the test client so that large
    uploads never leave an unclosed temporary file behind."""
    from werkzeug.datastructures import FileStorage, MultiDict
    from werkzeug.test import encode_multipart

    fields = MultiDict()
    for key, value in data.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, tuple):
                stream, name, content_type = item
                item = FileStorage(stream=stream, filename=name, content_type=content_type)
            fields.add(key, item)
    if csrf is True:
        fields.add("csrf_token", client.csrf_token())
    elif isinstance(csrf, str):
        fields.add("csrf_token", csrf)
    boundary, body = encode_multipart(fields)
    return client.post(
        url, data=body, content_type=f"multipart/form-data; boundary={boundary}", csrf=False, headers=headers or {}
    )
