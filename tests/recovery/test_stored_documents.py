"""What is stored for a case: encrypted blobs whose decrypted bytes carry no
metadata and match the SHA-256 in the database; rows and files together or not
at all."""

from __future__ import annotations

import hashlib
import io

from PIL import Image
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import select, text

from recovery_app.documents import storage
from recovery_app.models import Case, Document, OutboxMessage
from tests.factories import encoded, gps_exif, id_card, jpeg_bytes, pdf_bytes

from .conftest import full_form, send, stored_files


def _documents(db) -> dict[str, Document]:
    return {d.side: d for d in db.session.execute(select(Case)).scalar_one().documents}


def test_stored_images_carry_no_exif_and_decrypt_to_the_recorded_sha256(client, seller, documents, db, app):
    # ASVS 5.2.2 / 5.4.3: metadata removed by re-encoding; integrity by hash
    front = jpeg_bytes(id_card(seed=71), exif=gps_exif(orientation=6))
    info = PngInfo()
    info.add_text("Author", "Taro Yamada")
    back = encoded(id_card(seed=72), "PNG", pnginfo=info, exif=gps_exif())
    assert b"Exif" in front and b"Taro Yamada" in back
    assert (
        send(
            client, "/recovery/", full_form(documents, front=front, back=(io.BytesIO(back), "back.png", "image/png"))
        ).status_code
        == 302
    )
    stored = _documents(db)
    for side, document in stored.items():
        clean = storage.read(document)
        assert hashlib.sha256(clean).hexdigest() == document.sha256 and len(clean) == document.size
        with Image.open(io.BytesIO(clean)) as image:
            assert not image.getexif(), side
            assert "exif" not in image.info and "icc_profile" not in image.info and "comment" not in image.info
            assert (image.width, image.height) == (document.width, document.height)
        for marker in (b"Exif", b"PhoneMaker", b"Taro Yamada", b"GPS"):
            assert marker not in clean, (side, marker)
    # The EXIF orientation (6: turn 90°) was applied before the metadata went away.
    assert (stored["front"].width, stored["front"].height) == (760, 1200)
    assert stored["front"].content_type == "image/jpeg" and stored["back"].content_type == "image/png"
    # On disk, only ciphertext under random names.
    for path in stored_files(app):
        raw = path.read_bytes()
        assert not raw.startswith(b"\xff\xd8") and not raw.startswith(b"\x89PNG")
        assert path.stem in {d.storage_key for d in stored.values()}
        assert "front" not in path.name and "back" not in path.name


def test_pdf_front_is_rewritten_without_its_metadata(client, seller, documents, db):
    scan = pdf_bytes(pages=2)
    assert b"Taro Yamada" in scan
    form = full_form(documents, front=(io.BytesIO(scan), "scan.pdf", "application/pdf"))
    assert send(client, "/recovery/", form).status_code == 302
    front = _documents(db)["front"]
    clean = storage.read(front)
    assert front.content_type == "application/pdf" and front.pages == 2 and front.width is None
    assert clean.startswith(b"%PDF-") and b"Taro Yamada" not in clean


def test_file_names_are_kept_only_as_sanitised_display_text(client, seller, documents, db):
    long_name = "運転免許証 表面 " * 12 + ".jpg"
    form = full_form(
        documents,
        front=(io.BytesIO(documents["front"]), "  IMG_2041  copy.JPG ", "image/jpeg"),
        back=(io.BytesIO(documents["back"]), long_name, "image/jpeg"),
    )
    assert send(client, "/recovery/", form).status_code == 302
    stored = _documents(db)
    assert stored["front"].display_name == "IMG_2041 copy.JPG"
    assert len(stored["back"].display_name) <= 120 and stored["back"].display_name.endswith(".jpg")


def test_database_failure_after_staging_leaves_no_row_no_file_and_no_notice(
    client, seller, documents, db, app, backend
):
    # A real failure inside the transaction (a trigger refusing document rows),
    # after the files were written under their temporary names.
    if backend == "sqlite":
        db.session.execute(
            text(
                "CREATE TRIGGER refuse_documents BEFORE INSERT ON documents BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
        )
    else:
        db.session.execute(
            text(
                "CREATE FUNCTION refuse_documents() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql"
            )
        )
        db.session.execute(
            text(
                "CREATE TRIGGER refuse_documents BEFORE INSERT ON documents "
                "FOR EACH ROW EXECUTE FUNCTION refuse_documents()"
            )
        )
    db.session.commit()
    response = send(client, "/recovery/", full_form(documents))
    assert response.status_code == 500
    assert "変更は行われていません" in response.get_data(as_text=True)
    assert db.session.execute(select(Case)).first() is None
    assert db.session.execute(select(OutboxMessage)).first() is None
    assert stored_files(app) == []


def test_pdf_of_exactly_the_page_limit_is_accepted(client, seller, documents, db):
    form = full_form(documents, front=(io.BytesIO(pdf_bytes(pages=10)), "scan.pdf", "application/pdf"))
    assert send(client, "/recovery/", form).status_code == 302
    assert _documents(db)["front"].pages == 10
