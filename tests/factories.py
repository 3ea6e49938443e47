"""Factories: the people, cases and documents tests need, made through the
product's own constructors, and the files sellers send (ID-card pictures,
JPEG, PNG and PDF, hostile ones included)."""

from __future__ import annotations

import io
import random
import secrets
import struct
import zlib
from datetime import timedelta

import pyotp
from PIL import Image, ImageDraw, UnidentifiedImageError

from recovery_app import lifecycle, vault
from recovery_app.auth.users import create_user, get_or_create_account
from recovery_app.documents import storage
from recovery_app.extensions import db
from recovery_app.models import Document, Passkey, PasskeyChallenge, RecoveryCode, TrustedDevice, TwoFactorMethod
from recovery_app.models.base import utcnow

from .helpers import TEST_PASSWORD

ALL_CHECKS = ["type_matches", "not_expired", "name_matches", "photo_clear", "selfie_matches"]


# --- files --------------------------------------------------------------------------


def id_card(width: int = 1200, height: int = 760, *, seed: int = 1, label: str = "IDENTITY CARD") -> Image.Image:
    """An ID-card-like picture: coloured card, photo box, text lines, some noise
    (so the JPEG is not trivially small and two seeds never give the same bytes)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), (rng.randint(200, 240), rng.randint(215, 240), rng.randint(200, 235)))
    draw = ImageDraw.Draw(image)
    margin = width // 30
    draw.rounded_rectangle(
        (margin, margin, width - margin, height - margin),
        radius=width // 40,
        outline=(40, 60, 90),
        width=6,
        fill=(235, 240, 246),
    )
    draw.rectangle((margin * 2, margin * 4, margin * 2 + width // 4, margin * 4 + height // 2), fill=(150, 160, 175))
    draw.ellipse(
        (margin * 2 + width // 16, margin * 5, margin * 2 + width // 5, margin * 5 + height // 5), fill=(225, 200, 180)
    )
    draw.text((margin * 2, margin * 1.6), label, fill=(20, 30, 60))
    for row in range(6):
        y = margin * 4 + row * height // 10
        draw.text((width // 3 + margin, y), f"FIELD {row}: {rng.randint(10**5, 10**9)}", fill=(30, 30, 30))
        draw.line((width // 3 + margin, y + 22, width - margin * 3, y + 22), fill=(180, 185, 195), width=2)
    for _ in range(width * height // 60):
        x, y = rng.randrange(width), rng.randrange(height)
        image.putpixel((x, y), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    return image


def jpeg_bytes(
    image: Image.Image | None = None, *, exif=None, comment: bytes | None = None, quality: int = 88, seed: int = 1
) -> bytes:
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
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x013B] = "Taro Yamada"  # Artist
    if orientation:
        exif[0x0112] = orientation  # Orientation
    exif[0x8825] = {  # GPSInfo
        1: "N",
        2: (35.0, 40.0, 52.0),
        3: "E",
        4: (139.0, 46.0, 2.0),
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


def pdf_bytes(
    *,
    pages: int = 1,
    javascript: bool = False,
    open_action: bool = False,
    encrypt: bool = False,
    embedded: bool = False,
) -> bytes:
    from pypdf import PdfWriter
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    if javascript:  # a document-level script, run by viewers when the file opens
        script = writer._add_object(
            DictionaryObject(
                {
                    NameObject("/S"): NameObject("/JavaScript"),
                    NameObject("/JS"): TextStringObject("app.alert('hello');"),
                }
            )
        )
        tree = DictionaryObject({NameObject("/Names"): ArrayObject([TextStringObject("hello"), script])})
        writer._root_object[NameObject("/Names")] = DictionaryObject({NameObject("/JavaScript"): tree})
    if open_action:
        action = DictionaryObject(
            {NameObject("/S"): NameObject("/Launch"), NameObject("/F"): TextStringObject("calc.exe")}
        )
        writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)
    if embedded:
        writer.add_attachment("payload.exe", b"MZ\x90\x00 not really")
    writer.add_metadata({"/Author": "Taro Yamada", "/Title": "scan"})
    if encrypt:
        writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


CONTENT = {"image/png": png_bytes, "image/jpeg": jpeg_bytes, "application/pdf": pdf_bytes}


# --- rows ---------------------------------------------------------------------------


class Factory:
    def __init__(self, app):
        self.app = app
        self.counter = 0

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def account(self, name: str | None = None):
        return get_or_create_account(name or f"Shop {self._next()} 株式会社", utcnow())

    def user(
        self,
        role: str = "seller_owner",
        *,
        email: str | None = None,
        account=None,
        enrolled: bool = True,
        locale: str = "ja",
        password: str = TEST_PASSWORD,
        display_name: str = "",
        created_at=None,
    ):
        """A user; ``enrolled`` users have an authenticator app (``auth.totp`` reads its code)."""
        n = self._next()
        if role in ("seller_owner", "seller_user") and account is None:
            account = self.account()
        user = create_user(
            email=email or f"{role.replace('_', '-')}{n}@example.test",
            password=password,
            role=role,
            account=account,
            display_name=display_name or f"User {n}",
            romanised_name=display_name or f"User {n}",
            locale=locale,
            now=created_at or utcnow(),
            check_password=False,
        )
        if enrolled:
            self.add_totp(user)
            user.must_enroll_2sv = False
        db.session.flush()
        return user

    def add_totp(self, user, *, primary: bool = True):
        """Give ``user`` a confirmed authenticator app; its seed is kept on the user for tests."""
        seed = pyotp.random_base32()
        blob, key_id = vault.encrypt(seed.encode(), f"totp:{user.id}".encode())
        method = TwoFactorMethod(
            user_id=user.id,
            kind="totp",
            is_primary=primary,
            secret_encrypted=blob,
            key_id=key_id,
            label="Authenticator",
            created_at=utcnow(),
            confirmed_at=utcnow(),
        )
        db.session.add(method)
        db.session.flush()
        user._test_totp_seed = seed
        return method

    def add_phone(self, user, e164: str = "+819012345678", *, kind: str = "sms", primary: bool = True):
        """Give ``user`` a confirmed phone method (SMS or voice); as the primary
        one, the user's other methods stop being primary."""
        if primary:
            for method in db.session.query(TwoFactorMethod).filter_by(user_id=user.id):
                method.is_primary = False
        method = TwoFactorMethod(
            user_id=user.id,
            kind=kind,
            is_primary=primary,
            phone_e164=e164,
            label="",
            created_at=utcnow(),
            confirmed_at=utcnow(),
        )
        db.session.add(method)
        user.must_enroll_2sv = False
        db.session.flush()
        return method

    def add_passkey(self, user, device=None, *, name: str = "Phone"):
        """Give ``user`` a passkey of ``device`` (a tests.passkey_device.SoftPasskey) and an
        open challenge, as if one were being used; the device is returned."""
        from .passkey_device import SoftPasskey

        device = device or SoftPasskey()
        db.session.add(
            Passkey(
                user_id=user.id,
                credential_id=device.credential_id,
                public_key=device._cose_key(),
                sign_count=0,
                transports="internal",
                name=name,
                created_at=utcnow(),
            )
        )
        db.session.add(
            PasskeyChallenge(
                user_id=user.id,
                purpose="sign_in",
                challenge=secrets.token_bytes(32),
                created_at=utcnow(),
                expires_at=utcnow() + timedelta(minutes=5),
            )
        )
        db.session.flush()
        return device

    def document(
        self, case, data: bytes, *, side: str = "front", content_type: str = "image/jpeg", round: int = 1, now=None
    ) -> Document:  # noqa: A002 - the column's name
        """Store ``data`` the way intake does (encrypted, two-phase) and add the Document row."""
        staged = storage.stage(data)
        width = height = None
        if content_type.startswith("image/"):
            try:
                with Image.open(io.BytesIO(data)) as image:
                    width, height = image.size
            except UnidentifiedImageError:  # a broken file, on purpose
                pass
        document = staged.row(
            case_id=case.id,
            round=round,
            side=side,
            content_type=content_type,
            width=width,
            height=height,
            pages=1 if content_type == "application/pdf" else None,
            display_name=f"{side}.bin",
            created_at=now or case.submitted_at,
        )
        db.session.add(document)
        db.session.flush()
        storage.commit_staged([staged])
        db.session.expire(case, ["documents"])
        return document

    def case(self, user=None, *, document_type: str = "passport", submitted_at=None, status: str = "submitted"):
        """A submitted case (no document files) through the lifecycle's own constructor."""
        user = user or self.user(enrolled=False)
        case = lifecycle.new_case(
            user,
            document_type,
            now=submitted_at or utcnow(),
            address="203.0.113.7",
            browser="Mozilla/5.0 (iPhone) Safari/604.1",
        )
        if status != "submitted":
            case.status = status
        db.session.flush()
        return case


class ReviewFactory:
    """Cases the way intake leaves them: documents encrypted on disk, rows in the database."""

    def __init__(self, make, now):
        self.make = make
        self.now = now
        # Strong references: the session's identity map holds objects weakly, and
        # test-only attributes (the TOTP seed) live on these very objects.
        self.kept: list = []

    def document(
        self,
        case,
        side: str = "front",
        content_type: str = "image/png",
        *,
        content: bytes | None = None,
        round: int = 1,
    ) -> Document:  # noqa: A002 - the column's name
        data = content if content is not None else CONTENT[content_type]()
        return self.make.document(case, data, side=side, content_type=content_type, round=round)

    def seller(self, **kwargs):
        """An enrolled seller with recovery codes and a trusted device: everything an approval removes."""
        seller = self.make.user("seller_owner", **kwargs)
        db.session.add(RecoveryCode(user_id=seller.id, code_hash="argon2-hash-placeholder", created_at=self.now))
        current = utcnow()
        db.session.add(
            TrustedDevice(
                user_id=seller.id,
                token_hash=secrets.token_hex(32),
                browser="Firefox",
                address="198.51.100.4",
                created_at=current,
                last_seen_at=current,
                expires_at=current + timedelta(days=90),
            )
        )
        db.session.flush()
        self.kept.append(seller)
        return seller

    def case(
        self,
        seller=None,
        *,
        submitted_at=None,
        documents=(("front", "image/png"), ("back", "image/jpeg"), ("selfie", "image/jpeg")),
        **kwargs,
    ):
        seller = seller or self.seller()
        case = self.make.case(seller, submitted_at=submitted_at or self.now, **kwargs)
        for side, content_type in documents:
            self.document(case, side, content_type)
        db.session.commit()  # kept until the test ends: a refused action rolls back only itself
        return case
