"""Fixtures for the recovery intake: realistic test documents made with Pillow
and pypdf, a seller at the password step, and helpers that look at what was
stored (rows and files)."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from recovery_app.extensions import db as _db
from recovery_app.models import Case, Document


def id_card(width: int = 1200, height: int = 760, *, seed: int = 1, label: str = "IDENTITY CARD") -> Image.Image:
    """An ID-card-like picture: coloured card, photo box, text lines, some noise
    (so the JPEG is not trivially small and two seeds never give the same bytes)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), (rng.randint(200, 240), rng.randint(215, 240), rng.randint(200, 235)))
    draw = ImageDraw.Draw(image)
    margin = width // 30
    draw.rounded_rectangle((margin, margin, width - margin, height - margin), radius=width // 40,
                           outline=(40, 60, 90), width=6, fill=(235, 240, 246))
    draw.rectangle((margin * 2, margin * 4, margin * 2 + width // 4, margin * 4 + height // 2), fill=(150, 160, 175))
    draw.ellipse((margin * 2 + width // 16, margin * 5, margin * 2 + width // 5, margin * 5 + height // 5),
                 fill=(225, 200, 180))
    draw.text((margin * 2, margin * 1.6), label, fill=(20, 30, 60))
    for row in range(6):
        y = margin * 4 + row * height // 10
        draw.text((width // 3 + margin, y), f"FIELD {row}: {rng.randint(10**5, 10**9)}", fill=(30, 30, 30))
        draw.line((width // 3 + margin, y + 22, width - margin * 3, y + 22), fill=(180, 185, 195), width=2)
    for _ in range(width * height // 60):
        x, y = rng.randrange(width), rng.randrange(height)
        image.putpixel((x, y), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    return image


def jpeg_bytes(image: Image.Image | None = None, *, exif=None, comment: bytes | None = None, quality: int = 88,
               seed: int = 1) -> bytes:
    image = image or id_card(seed=seed)
    out = io.BytesIO()
    kwargs = {"quality": quality}
    if exif is not None:
        kwargs["exif"] = exif
    if comment is not None:
        kwargs["comment"] = comment
    image.save(out, "JPEG", **kwargs)
    return out.getvalue()


def png_bytes(image: Image.Image | None = None, *, seed: int = 1) -> bytes:
    out = io.BytesIO()
    (image or id_card(seed=seed)).save(out, "PNG")
    return out.getvalue()


def encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def gps_exif(orientation: int | None = None) -> Image.Exif:
    """EXIF with a camera make, an owner name and a GPS position (Tokyo Station)."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"          # Make
    exif[0x013B] = "Taro Yamada"         # Artist
    if orientation:
        exif[0x0112] = orientation       # Orientation
    exif[0x8825] = {                     # GPSInfo
        1: "N", 2: (35.0, 40.0, 52.0), 3: "E", 4: (139.0, 46.0, 2.0),
    }
    return exif


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG of one colour that claims 900 megapixels: ~100 KB on disk, ~110 MB
    (1 bit per pixel) or far more once decoded."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def pdf_bytes(*, pages: int = 1, javascript: bool = False, open_action: bool = False, encrypt: bool = False,
              embedded: bool = False) -> bytes:
    from pypdf import PdfWriter
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    if javascript:  # a document-level script, run by viewers when the file opens
        script = writer._add_object(DictionaryObject({NameObject("/S"): NameObject("/JavaScript"),
                                                      NameObject("/JS"): TextStringObject("app.alert('hello');")}))
        tree = DictionaryObject({NameObject("/Names"): ArrayObject([TextStringObject("hello"), script])})
        writer._root_object[NameObject("/Names")] = DictionaryObject({NameObject("/JavaScript"): tree})
    if open_action:
        action = DictionaryObject({NameObject("/S"): NameObject("/Launch"),
                                   NameObject("/F"): TextStringObject("calc.exe")})
        writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)
    if embedded:
        writer.add_attachment("payload.exe", b"MZ\x90\x00 not really")
    writer.add_metadata({"/Author": "Taro Yamada", "/Title": "scan"})
    if encrypt:
        writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


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
    auth.password_step(client, user)
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
    """Call after a refused request: no case, no document row, no file of any kind."""
    def check():
        assert case_count() == 0
        assert document_count() == 0
        assert stored_files(app) == []
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
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}", csrf=False,
                       headers=headers or {})
