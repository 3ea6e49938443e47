"""The document pipeline on its own: type from content, pixel cap, metadata
removal, PDF structure refusal, file names. (Request-level behaviour is tested
in tests/recovery.)"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from recovery_app.documents import pipeline
from tests.factories import bomb_png, encoded, gps_exif, id_card, jpeg_bytes, pdf_bytes, png_bytes

LIMITS = pipeline.Limits()


def _minimal_pdf(catalog_extra: str) -> bytes:
    """A hand-written one-page PDF whose catalog carries ``catalog_extra``."""
    objects = [
        f"<< /Type /Catalog /Pages 2 0 R {catalog_extra} >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        "<< /S /JavaScript /JS (app.alert(1)) >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode())
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def test_limits_come_from_the_settings(app):
    app.config.update(RECOVERY_MAX_UPLOAD_MB=3, RECOVERY_MAX_IMAGE_PIXELS=1000, RECOVERY_MAX_PDF_PAGES=2)
    limits = pipeline.Limits.from_config(app.config)
    assert (limits.max_bytes, limits.max_pixels, limits.max_pdf_pages) == (3 * 1024 * 1024, 1000, 2)


def test_pixel_cap_from_settings_refuses_a_normal_photo_above_it():
    # ASVS 5.2.6
    with pytest.raises(pipeline.DocumentRejected) as refused:
        pipeline.clean(jpeg_bytes(seed=1), pipeline.Limits(max_pixels=500_000))
    assert "over 0.5 megapixels" in str(refused.value.message)
    assert Image.MAX_IMAGE_PIXELS == 500_000


def test_bomb_is_refused_from_its_header():
    with pytest.raises(pipeline.DocumentRejected) as refused:
        pipeline.clean(bomb_png(), LIMITS)
    assert "too large to process" in str(refused.value.message)


def test_exif_orientation_is_applied_and_metadata_removed():
    photo = jpeg_bytes(id_card(1200, 760, seed=2), exif=gps_exif(orientation=8), comment=b"<?php echo 1; ?>")
    result = pipeline.clean(photo, LIMITS)
    assert (result.width, result.height) == (760, 1200)
    assert b"Exif" not in result.data and b"<?php" not in result.data
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.format == "JPEG" and not image.getexif()


def _damaged_exif(kind: str) -> bytes:
    """The EXIF block of ``gps_exif`` broken the ways phones' and editors' blocks are found broken."""
    good = gps_exif(orientation=6).tobytes()
    if kind == "tag_turned_into_an_unknown_one":  # Make (0x010f) read with another tag's size
        return good.replace(bytes.fromhex("010f0002"), bytes.fromhex("01410002"), 1)
    if kind == "number_stored_as_text":  # YResolution (0x011b) as ASCII
        return good.replace(bytes.fromhex("010f0002"), bytes.fromhex("011b0002"), 1)
    return good[:11]  # cut off after the TIFF header


@pytest.mark.parametrize("kind", ["tag_turned_into_an_unknown_one", "number_stored_as_text", "cut_short"])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_photo_whose_exif_is_damaged_is_kept_as_it_is_without_the_exif(kind, fmt):
    photo = encoded(id_card(1200, 760, seed=6), fmt, exif=_damaged_exif(kind))
    result = pipeline.clean(photo, LIMITS)
    # Turned upright when the orientation could still be read, else as it came; never a server error.
    assert sorted((result.width, result.height)) == [760, 1200] and b"Exif" not in result.data


def test_a_pdf_whose_numbers_overflow_is_refused_as_unreadable():
    pdf = _minimal_pdf("").rsplit(b"startxref\n", 1)[0] + b"startxref\n99999999999999999999999\n%%EOF\n"
    with pytest.raises(pipeline.DocumentRejected):
        pipeline.clean(pdf, LIMITS)


def test_portrait_photo_of_a_card_passes_the_minimum_size():
    result = pipeline.clean(jpeg_bytes(id_card(600, 900, seed=3)), LIMITS)
    assert (result.width, result.height) == (600, 900)


def test_cmyk_jpeg_is_stored_as_rgb_and_palette_png_as_png():
    cmyk = pipeline.clean(encoded(id_card(seed=4).convert("CMYK"), "JPEG"), LIMITS)
    with Image.open(io.BytesIO(cmyk.data)) as image:
        assert image.mode == "RGB"
    palette = pipeline.clean(encoded(id_card(seed=5).convert("P"), "PNG"), LIMITS)
    assert palette.content_type == "image/png"


def test_trailing_bytes_after_a_jpeg_are_dropped():
    photo = jpeg_bytes(seed=6) + b"<html><script>alert(1)</script></html>"
    assert b"<script>" not in pipeline.clean(photo, LIMITS).data


def test_png_with_a_corrupt_chunk_is_refused():
    data = bytearray(png_bytes(seed=7))
    data[200:260] = b"\x00" * 60
    with pytest.raises(pipeline.DocumentRejected):
        pipeline.clean(bytes(data), LIMITS)


@pytest.mark.parametrize(
    "extra",
    [
        "/OpenAction 4 0 R",
        "/Open#41ction 4 0 R",  # the same name written with a #xx escape
        "/Names << /J#61vaScript << /Names [(a) 4 0 R] >> >>",
        "/AA << /WC 4 0 R >>",
    ],
)
def test_pdf_actions_are_refused_however_they_are_spelt(extra):
    with pytest.raises(pipeline.DocumentRejected) as refused:
        pipeline.clean(_minimal_pdf(extra), LIMITS)
    assert "scripts, automatic actions or attached files" in str(refused.value.message)


def test_pdf_link_that_launches_a_program_is_refused():
    # No forbidden key anywhere: only the action type (/S /Launch) gives it away.
    pdf = _minimal_pdf("").replace(
        b"/MediaBox [0 0 595 842] >>",
        b"/MediaBox [0 0 595 842] /Annots [<< /Type /Annot /Subtype /Link /Rect [0 0 100 100] "
        b"/A << /S /Launch /F (calc.exe) >> >>] >>",
    )
    with pytest.raises(pipeline.DocumentRejected) as refused:
        pipeline.clean(pdf, LIMITS)
    assert "scripts, automatic actions or attached files" in str(refused.value.message)


def test_plain_hand_written_pdf_is_accepted():
    assert pipeline.clean(_minimal_pdf(""), LIMITS).pages == 1


def test_pdf_with_broken_structure_is_refused_as_unreadable():
    with pytest.raises(pipeline.DocumentRejected) as refused:
        pipeline.clean(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\n%%EOF", LIMITS)
    assert "could not be read" in str(refused.value.message)


def test_pdf_page_cap_follows_the_limits():
    with pytest.raises(pipeline.DocumentRejected):
        pipeline.clean(pdf_bytes(pages=3), pipeline.Limits(max_pdf_pages=2))
    assert pipeline.clean(pdf_bytes(pages=2), pipeline.Limits(max_pdf_pages=2)).pages == 2


@pytest.mark.parametrize(
    "name, shown",
    [
        ("IMG_0001.JPG", "IMG_0001.JPG"),
        ("  免許証\u3000表.jpg ", "免許証 表.jpg"),
        ("", ""),
        (None, ""),
        ("x" * 200 + ".jpeg", "x" * 114 + "….jpeg"),
    ],
)
def test_display_names_are_tidied(name, shown):
    assert pipeline.display_name(name) == shown


@pytest.mark.parametrize("name", ["../x.jpg", "a\\b.jpg", "a\x00.jpg", "a\u202egpj.exe", "a\r\nb.jpg", "n" * 256])
def test_crafted_file_names_are_refused(name):
    with pytest.raises(pipeline.DocumentRejected):
        pipeline.display_name(name)
