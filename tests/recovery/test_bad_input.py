"""Every bad input on the intake form gets a clear message on its field and
changes nothing: no case row, no document row, no file under the upload folder,
no server error. Each runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import io
import zipfile

import pytest
from sqlalchemy import select

from recovery_app.models import Case
from tests.factories import encoded, id_card, jpeg_bytes, pdf_bytes, png_bytes

from .conftest import case_count, file_field, form_for, full_form, send, stored_files

REFUSED_TYPE = "This file cannot be used: it is not a JPEG or PNG photo or a PDF"


@pytest.fixture
def english(client, seller):
    client.get("/language/en")
    return seller


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("shell.php", "<?php system($_GET['c']); ?>")
    return out.getvalue()


SVG_WITH_SCRIPT = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="1200" height="800">'
    b'<script>alert(document.cookie)</script><rect width="1200" height="800"/></svg>'
)
HTML_PAGE = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script><p>ID</p></body></html>"
HEIC_HEADER = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 4000
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 4000
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 50 + b"\x40\x00\x00\x00PE\x00\x00" + b"\x00" * 4000


def _bad_front(name: str) -> tuple[bytes, str, str]:
    """(bytes, file name, declared type) for a front that must be refused."""
    image = id_card(seed=21)
    makers = {
        "zero_bytes": lambda: (b"", "front.jpg", "image/jpeg"),
        "html_named_jpg": lambda: (HTML_PAGE, "passport.jpg", "image/jpeg"),
        "truncated_jpeg": lambda: (jpeg_bytes(seed=22)[:20000], "front.jpg", "image/jpeg"),
        "gif": lambda: (encoded(image, "GIF"), "front.gif", "image/gif"),
        "svg_with_script": lambda: (SVG_WITH_SCRIPT, "front.svg", "image/svg+xml"),
        "webp": lambda: (encoded(image, "WEBP"), "front.webp", "image/webp"),
        "tiff": lambda: (encoded(image, "TIFF"), "front.tiff", "image/tiff"),
        "bmp": lambda: (encoded(image, "BMP"), "front.bmp", "image/bmp"),
        "heic": lambda: (HEIC_HEADER, "IMG_0001.HEIC", "image/heic"),
        "zip": lambda: (_zip(), "front.jpg", "image/jpeg"),
        "elf_executable": lambda: (ELF, "front.jpg", "image/jpeg"),
        "windows_executable": lambda: (WINDOWS_EXE, "front.pdf", "application/pdf"),
        "pdf_with_javascript": lambda: (pdf_bytes(javascript=True), "scan.pdf", "application/pdf"),
        "pdf_with_launch_open_action": lambda: (pdf_bytes(open_action=True), "scan.pdf", "application/pdf"),
        "pdf_with_embedded_file": lambda: (pdf_bytes(embedded=True), "scan.pdf", "application/pdf"),
        "encrypted_pdf": lambda: (pdf_bytes(encrypt=True), "scan.pdf", "application/pdf"),
        "pdf_with_50_pages": lambda: (pdf_bytes(pages=50), "scan.pdf", "application/pdf"),
        "too_small_photo": lambda: (jpeg_bytes(id_card(640, 400, seed=23)), "front.jpg", "image/jpeg"),
        "name_with_dot_dot_slash": lambda: (jpeg_bytes(seed=24), "../../../etc/cron.d/front.jpg", "image/jpeg"),
        "name_with_nul": lambda: (jpeg_bytes(seed=25), "front.php\x00.jpg", "image/jpeg"),
        "name_of_300_characters": lambda: (jpeg_bytes(seed=26), "a" * 296 + ".jpg", "image/jpeg"),
    }
    return makers[name]()


EXPECTED = {
    "zero_bytes": "This file is empty",
    "html_named_jpg": REFUSED_TYPE,
    "truncated_jpeg": "could not be read completely",
    "gif": REFUSED_TYPE,
    "svg_with_script": REFUSED_TYPE,
    "webp": REFUSED_TYPE,
    "tiff": REFUSED_TYPE,
    "bmp": REFUSED_TYPE,
    "heic": REFUSED_TYPE,
    "zip": REFUSED_TYPE,
    "elf_executable": REFUSED_TYPE,
    "windows_executable": REFUSED_TYPE,
    "pdf_with_javascript": "contains scripts, automatic actions or attached files",
    "pdf_with_launch_open_action": "contains scripts, automatic actions or attached files",
    "pdf_with_embedded_file": "contains scripts, automatic actions or attached files",
    "encrypted_pdf": "protected with a password or encryption",
    "pdf_with_50_pages": "This PDF has 50 pages; at most 10 are accepted",
    "too_small_photo": "This photo is too small (640×400 pixels)",
    "name_with_dot_dot_slash": "The file name contains characters that cannot be used",
    "name_with_nul": "The file name contains characters that cannot be used",
    "name_of_300_characters": "The file name is too long (over 255 characters)",
}


@pytest.mark.parametrize("bad", sorted(EXPECTED))
def test_bad_front_is_refused_with_a_clear_message_and_nothing_is_stored(
    bad, client, english, documents, nothing_changed
):
    # ASVS 5.2.1, 5.2.2, 5.4.1
    data, name, declared = _bad_front(bad)
    response = send(client, "/recovery/", full_form(documents, front=(io.BytesIO(data), name, declared)))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert EXPECTED[bad] in page.replace("&#39;", "'")
    if EXPECTED[bad] == REFUSED_TYPE:  # the message names what is allowed, and that a name can mislead
        assert "whatever its name ends with" in page
    assert 'id="error-front"' in page and 'id="error-back"' not in page  # the failing field is named
    # The seller's choices are kept.
    assert 'value="drivers_licence" data-sides="front back" checked' in page
    assert 'name="consent" value="y" checked' in page
    nothing_changed()


def test_decompression_bomb_is_refused_without_decoding(client, english, documents, bomb, nothing_changed):
    # ASVS 5.2.6: 30000×30000 pixels of one colour in a small PNG
    assert len(bomb) < 200_000
    response = send(client, "/recovery/", full_form(documents, front=(io.BytesIO(bomb), "front.png", "image/png")))
    assert response.status_code == 422
    assert "This image is too large to process (over 50 megapixels)" in response.get_data(as_text=True)
    nothing_changed()


def test_file_one_byte_over_the_cap_is_refused_naming_the_limit(client, english, documents, nothing_changed):
    # ASVS 5.2.1
    cap = 10 * 1024 * 1024
    photo = jpeg_bytes(seed=31)
    over = photo + b"\x00" * (cap + 1 - len(photo))
    response = send(client, "/recovery/", full_form(documents, front=(io.BytesIO(over), "front.jpg", "image/jpeg")))
    assert response.status_code == 422
    assert "This file is larger than 10 MB" in response.get_data(as_text=True)
    nothing_changed()


def test_file_exactly_at_the_cap_is_accepted_and_loses_its_padding(client, english, documents, db):
    cap = 10 * 1024 * 1024
    photo = jpeg_bytes(seed=32)
    at_cap = photo + b"\x00" * (cap - len(photo))
    response = send(client, "/recovery/", full_form(documents, front=(io.BytesIO(at_cap), "front.jpg", "image/jpeg")))
    assert response.status_code == 302
    front = next(d for d in db.session.execute(select(Case)).scalar_one().documents if d.side == "front")
    assert front.size < len(photo) * 2


def test_request_over_max_content_length_gets_a_clear_page_and_stores_nothing(
    app, client, english, documents, nothing_changed
):
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    padding = b"\x00" * (1024 * 1024)
    response = send(
        client,
        "/recovery/",
        full_form(documents, front=(io.BytesIO(documents["front"] + padding), "front.jpg", "image/jpeg")),
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "Your files are too large" in page and "Nothing was sent or saved" in page
    assert "at most 10 MB" in page and "at most 1 MB" in page
    assert 'href="/recovery/"' in page
    nothing_changed()


def test_a_form_with_too_many_parts_is_not_told_its_files_are_too_large(client, english, documents, nothing_changed):
    # Within MAX_CONTENT_LENGTH, but more parts than the form reader takes (MAX_FORM_PARTS).
    extra = {f"extra{n}": "x" for n in range(1100)}
    response = send(client, "/recovery/", {**extra, **full_form(documents)})  # refused before a file is read
    page = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "more fields, or a longer text, than this page accepts" in page and "Nothing was stored" in page
    assert "Your files are too large" not in page and " MB" not in page
    nothing_changed()


def test_a_text_field_over_the_form_memory_cap_is_named_as_such(app, client, english, documents, nothing_changed):
    long_text = "x" * (app.config["MAX_FORM_MEMORY_SIZE"] + 1)
    response = send(client, "/recovery/", {"note": long_text, **full_form(documents)})  # refused before a file is read
    page = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "more fields, or a longer text, than this page accepts" in page
    assert "Your files are too large" not in page
    nothing_changed()


def test_missing_required_side_is_named(client, english, documents, nothing_changed):
    response = send(client, "/recovery/", full_form(documents, back=None))
    assert response.status_code == 422
    assert "Please add this photo: Back." in response.get_data(as_text=True)
    nothing_changed()


def test_missing_selfie_is_named_when_selfies_are_required(client, english, documents, nothing_changed):
    response = send(client, "/recovery/", full_form(documents, selfie=None))
    assert "Please add this photo: Selfie holding the document." in response.get_data(as_text=True)
    nothing_changed()


def test_same_image_twice_is_refused(client, english, documents, nothing_changed):
    response = send(client, "/recovery/", full_form(documents, back=documents["front"]))
    assert response.status_code == 422
    assert "This is the same file as the one for Front" in response.get_data(as_text=True)
    nothing_changed()


def test_more_sides_than_the_document_type_asks_for_are_refused(client, english, documents, nothing_changed):
    form = full_form(documents, "passport")
    form["back"] = file_field(documents["back"], "back.jpg")
    response = send(client, "/recovery/", form)
    assert response.status_code == 422
    assert "Passport needs no Back. Please remove this file." in response.get_data(as_text=True)
    nothing_changed()


def test_two_files_in_one_field_are_refused(client, english, documents, nothing_changed):
    form = full_form(documents)
    form["front"] = [file_field(documents["front"], "a.jpg"), file_field(jpeg_bytes(seed=41), "b.jpg")]
    response = send(client, "/recovery/", form)
    assert response.status_code == 422
    assert "Please choose only one file here." in response.get_data(as_text=True)
    nothing_changed()


def test_unknown_document_type_is_refused(client, english, documents, nothing_changed):
    response = send(client, "/recovery/", full_form(documents, "library_card"))
    assert response.status_code == 422
    assert "Please choose which document you will send." in response.get_data(as_text=True)
    nothing_changed()


def test_missing_consent_is_refused(client, english, documents, nothing_changed):
    form = full_form(documents)
    del form["consent"]
    response = send(client, "/recovery/", form)
    assert response.status_code == 422
    assert "Please confirm that you agree" in response.get_data(as_text=True)
    nothing_changed()


@pytest.mark.parametrize("token", [False, "forged-token"], ids=["missing", "wrong"])
def test_missing_or_wrong_csrf_token_is_refused(token, client, english, documents, nothing_changed):
    # ASVS 3.5.1 (CSRF)
    response = send(client, "/recovery/", full_form(documents), csrf=token)
    assert response.status_code == 400
    assert "This form has expired or was not sent from this site" in response.get_data(as_text=True)
    nothing_changed()


@pytest.mark.parametrize("spoil", ["cut_short", "other_boundary"])
def test_an_upload_that_did_not_arrive_whole_says_so_not_that_the_form_expired(
    spoil, client, english, documents, nothing_changed
):
    from werkzeug.datastructures import FileStorage, MultiDict
    from werkzeug.test import encode_multipart

    fields = MultiDict({"csrf_token": client.csrf_token(), "document_type": "passport", "consent": "y"})
    fields.add("front", FileStorage(io.BytesIO(documents["front"]), "front.jpg", content_type="image/jpeg"))
    boundary, body = encode_multipart(fields)
    if spoil == "cut_short":  # the connection dropped before the form's first field was whole
        body = body[: body.index(b"csrf_token") + 40]
    else:
        boundary = "not-the-one-in-the-body"
    response = client.post(
        "/recovery/", data=body, content_type=f"multipart/form-data; boundary={boundary}", csrf=False
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "did not arrive complete" in page and "has expired" not in page
    nothing_changed()


def test_case_is_always_opened_for_the_session_user_never_a_posted_id(client, english, make, documents, db):
    # ASVS 8.2.2: the user comes from the session only
    victim = make.user()
    form = full_form(documents)
    form.update(user_id=str(victim.id), user=str(victim.id), case_user_id=str(victim.id))
    send(client, "/recovery/", form)
    case = db.session.execute(select(Case)).scalar_one()
    assert case.user_id == english.id != victim.id


def test_declared_content_type_is_ignored_a_jpeg_sent_as_pdf_is_stored_as_jpeg(client, english, documents, db):
    # ASVS 5.2.2: the type comes from the content, never from the browser
    form = full_form(documents, front=(io.BytesIO(documents["front"]), "front.pdf", "application/pdf"))
    assert send(client, "/recovery/", form).status_code == 302
    front = next(d for d in db.session.execute(select(Case)).scalar_one().documents if d.side == "front")
    assert front.content_type == "image/jpeg" and front.pages is None and front.width == 1200


def test_html_declared_as_jpeg_is_refused(client, english, documents, nothing_changed):
    form = full_form(documents, front=(io.BytesIO(HTML_PAGE), "front.jpg", "image/jpeg"))
    assert REFUSED_TYPE in send(client, "/recovery/", form).get_data(as_text=True)
    nothing_changed()


def test_every_bad_file_is_reported_at_once(client, english, documents, nothing_changed):
    form = full_form(
        documents, front=(io.BytesIO(b""), "f.jpg", "image/jpeg"), back=(io.BytesIO(HTML_PAGE), "b.jpg", "image/jpeg")
    )
    page = send(client, "/recovery/", form).get_data(as_text=True)
    assert 'id="error-front"' in page and 'id="error-back"' in page and 'id="error-selfie"' not in page
    nothing_changed()


def test_japanese_seller_reads_the_refusal_in_japanese(client, seller, documents, nothing_changed):
    form = full_form(documents, front=(io.BytesIO(HTML_PAGE), "front.jpg", "image/jpeg"))
    page = send(client, "/recovery/", form, headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert "このファイルは使用できません。ファイル名にかかわらず、JPEG・PNGの写真やPDFではないか" in page
    nothing_changed()


def test_png_with_a_zip_appended_loses_the_zip(client, english, documents, db, app):
    from recovery_app.documents import storage

    polyglot = png_bytes(seed=51) + _zip()
    form = full_form(documents, front=(io.BytesIO(polyglot), "front.png", "image/png"))
    assert send(client, "/recovery/", form).status_code == 302
    front = next(d for d in db.session.execute(select(Case)).scalar_one().documents if d.side == "front")
    stored = storage.read(front)
    assert front.content_type == "image/png"
    assert b"PK\x03\x04" not in stored and b"shell.php" not in stored
    assert stored.endswith(b"IEND\xaeB`\x82")


def test_jpeg_with_a_php_payload_in_its_comment_and_exif_is_stored_without_it(client, english, documents, db):
    from PIL import Image

    from recovery_app.documents import storage

    payload = b"<?php system($_GET['c']); ?><script>alert(1)</script>"
    exif = Image.Exif()
    exif[0x010E] = payload.decode()  # ImageDescription
    photo = jpeg_bytes(id_card(seed=52), exif=exif, comment=payload)
    assert payload in photo
    assert send(client, "/recovery/", full_form(documents, front=photo)).status_code == 302
    front = next(d for d in db.session.execute(select(Case)).scalar_one().documents if d.side == "front")
    stored = storage.read(front)
    assert b"<?php" not in stored and b"<script>" not in stored
    assert not any(p.suffix == ".tmp" for p in stored_files(client.application))


def test_rate_limit_per_user_refuses_with_a_clear_page(app, client, english, documents):
    # ASVS 2.4.1
    app.config["RECOVERY_CASE_LIMIT_PER_USER"] = "2 per hour"
    bad = full_form(documents, front=(io.BytesIO(b""), "f.jpg", "image/jpeg"))
    assert send(client, "/recovery/", bad).status_code == 422
    assert send(client, "/recovery/", bad).status_code == 422
    third = send(client, "/recovery/", full_form(documents))
    assert third.status_code == 429
    assert "Too many attempts" in third.get_data(as_text=True)
    assert case_count() == 0


def test_rate_limit_per_address_covers_every_user_of_that_address(app, make, auth, documents):
    app.config["RECOVERY_CASE_LIMIT_PER_ADDRESS"] = "2 per hour"
    bad = form_for("passport", front=b"", selfie=documents["selfie"])
    statuses = []
    for _ in range(3):
        fresh = app.test_client()
        auth.fast_password_step(fresh, make.user())
        statuses.append(send(fresh, "/recovery/", bad).status_code)
    assert statuses == [422, 422, 429]
