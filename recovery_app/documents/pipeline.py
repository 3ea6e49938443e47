"""Making an uploaded identity document safe before anything is stored.

Every upload goes through ``clean``:

* size: empty files and files over the per-file cap are refused (the whole
  request is capped earlier by ``MAX_CONTENT_LENGTH``);
* type: read from the content by libmagic, never from the name or the type the
  browser declared; only JPEG, PNG and PDF pass;
* images: Pillow opens them under a pixel cap (a decompression bomb is refused
  before it is decoded), decodes every pixel (a truncated file is refused),
  applies the EXIF orientation, checks the minimum size and re-encodes the
  pixels into a fresh file: no EXIF, GPS, comments, ICC profile or trailing
  bytes survive, so a polyglot loses its payload;
* PDFs: pypdf parses them; encrypted files, scripts, actions, launches,
  embedded files and too many pages are refused; the pages are written into a
  new file without the document information or XMP metadata.

No antivirus signatures can be fetched where this runs (ASVS 5.4.3): the
re-encoding and the PDF structure refusal are what replace them.
"""

from __future__ import annotations

import io
import struct
import unicodedata
import warnings
from dataclasses import dataclass

import magic
from flask_babel import lazy_gettext as _l
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "application/pdf": "PDF"}
DISPLAY_NAME_MAX = 120
FILE_NAME_MAX = 255
JPEG_QUALITY = 90
# Names that let a PDF run something, open something or carry another file.
PDF_FORBIDDEN_KEYS = frozenset(
    {
        "/JavaScript",
        "/JS",
        "/OpenAction",
        "/AA",
        "/Launch",
        "/EmbeddedFile",
        "/EmbeddedFiles",
        "/RichMedia",
        "/XFA",
        "/SubmitForm",
        "/ImportData",
        "/GoToE",
        "/GoToR",
    }
)
PDF_FORBIDDEN_ACTIONS = frozenset(
    {
        "/JavaScript",
        "/Launch",
        "/SubmitForm",
        "/ImportData",
        "/GoToE",
        "/GoToR",
        "/RichMediaExecute",
    }
)
PDF_MAX_OBJECTS = 200_000


class DocumentRejected(ValueError):
    """An upload that cannot be accepted; ``message`` says why, for the seller."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 50_000_000
    min_width: int = 800
    min_height: int = 500
    max_pdf_pages: int = 10

    @classmethod
    def from_config(cls, config) -> Limits:
        return cls(
            max_bytes=config["RECOVERY_MAX_UPLOAD_MB"] * 1024 * 1024,
            max_pixels=config["RECOVERY_MAX_IMAGE_PIXELS"],
            min_width=config["RECOVERY_MIN_IMAGE_WIDTH"],
            min_height=config["RECOVERY_MIN_IMAGE_HEIGHT"],
            max_pdf_pages=config["RECOVERY_MAX_PDF_PAGES"],
        )


@dataclass(frozen=True)
class CleanDocument:
    data: bytes
    content_type: str
    width: int | None = None
    height: int | None = None
    pages: int | None = None


def sniff(data: bytes) -> str:
    """The MIME type libmagic reads from the content."""
    return magic.from_buffer(data[:65536], mime=True)


def clean(data: bytes, limits: Limits) -> CleanDocument:
    """Return a safe copy of ``data`` or raise ``DocumentRejected``."""
    if not data:
        raise DocumentRejected(_l("This file is empty. Please choose the photo or PDF again."))
    if len(data) > limits.max_bytes:
        raise DocumentRejected(
            _l(
                "This file is larger than %(mb)s MB. Please send a smaller photo or PDF.",
                mb=limits.max_bytes // (1024 * 1024),
            )
        )
    content_type = sniff(data)
    if content_type not in ALLOWED_TYPES:
        raise DocumentRejected(
            _l(
                "This file cannot be used: it is not a JPEG or PNG photo or a PDF, whatever its name ends with, "
                "or it is damaged. Please take the photo again or choose another file."
            )
        )
    if content_type == "application/pdf":
        return _clean_pdf(data, limits)
    return _clean_image(data, content_type, limits)


# --- images -------------------------------------------------------------------


def _clean_image(data: bytes, content_type: str, limits: Limits) -> CleanDocument:
    unreadable = DocumentRejected(
        _l("This image could not be read completely. It may be damaged or cut off: please take the photo again.")
    )
    too_many_pixels = DocumentRejected(
        _l(
            "This image is too large to process (over %(mp)s megapixels). Please send a smaller photo.",
            mp=f"{limits.max_pixels / 1_000_000:g}",
        )
    )
    # Pillow's own guard, set from configuration: a bomb is refused when the
    # header is read, before a single pixel is decoded.
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[ALLOWED_TYPES[content_type]]) as image:
                if image.width * image.height > limits.max_pixels:
                    raise too_many_pixels
                image.load()
                _turn_upright(image)
                _check_size(image, limits)
                return CleanDocument(_encode(image, content_type), content_type, image.width, image.height)
        except DocumentRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise too_many_pixels from None
        except (
            UnidentifiedImageError,
            OSError,
            SyntaxError,
            ValueError,
            EOFError,
            MemoryError,
            struct.error,
            TypeError,
            KeyError,
            IndexError,
        ):
            raise unreadable from None


def _turn_upright(image: Image.Image) -> None:
    """Apply the EXIF orientation, in place (no second copy of the pixels). A
    damaged EXIF block (a phone's, an editor's) says nothing reliable about
    the orientation: the picture is kept as it is, and the block goes with
    the rest of the metadata when the image is encoded again."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except (struct.error, TypeError, KeyError, IndexError, ValueError, ZeroDivisionError):
        pass


def _check_size(image: Image.Image, limits: Limits) -> None:
    long_side, short_side = max(image.size), min(image.size)
    need_long, need_short = max(limits.min_width, limits.min_height), min(limits.min_width, limits.min_height)
    if long_side < need_long or short_side < need_short:
        # Documents are photographed either way up, so the minimum applies to
        # the long and the short side rather than to width and height.
        raise DocumentRejected(
            _l(
                "This photo is too small (%(width)s×%(height)s pixels). It must be at least "
                "%(min_w)s×%(min_h)s so the text can be read: please take it closer or at a "
                "higher resolution.",
                width=image.width,
                height=image.height,
                min_w=need_long,
                min_h=need_short,
            )
        )


def _encode(image: Image.Image, content_type: str) -> bytes:
    """Fresh pixels in a fresh file: nothing of the original container survives."""
    image.info = {}  # Pillow would carry comments and ICC profiles across otherwise
    out = io.BytesIO()
    if content_type == "image/jpeg":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=JPEG_QUALITY)
    else:
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGBA" if image.has_transparency_data else "RGB")
        image.save(out, "PNG", compress_level=6)
    return out.getvalue()


# --- PDFs ---------------------------------------------------------------------


def _clean_pdf(data: bytes, limits: Limits) -> CleanDocument:
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PyPdfError

    unreadable = DocumentRejected(_l("This PDF could not be read. Please export it again or send a photo instead."))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pypdf warns about every small irregularity it repairs
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                raise DocumentRejected(
                    _l(
                        "This PDF is protected with a password or encryption. Please send a "
                        "copy without protection, or a photo."
                    )
                )
            pages = len(reader.pages)
            if pages > limits.max_pdf_pages:
                raise DocumentRejected(
                    _l(
                        "This PDF has %(pages)s pages; at most %(max)s are accepted. Please send "
                        "only the pages of the document.",
                        pages=pages,
                        max=limits.max_pdf_pages,
                    )
                )
            if pages == 0:
                raise unreadable
            _refuse_active_content(reader.trailer)
            writer = PdfWriter()
            for page in reader.pages:
                copied = writer.add_page(page)
                for key in ("/Metadata", "/PieceInfo", "/AA"):
                    copied.pop(key, None)
            writer.metadata = None
            out = io.BytesIO()
            writer.write(out)
            clean_bytes = out.getvalue()
            # The rewritten file is checked again: what is stored must pass on its own.
            check = PdfReader(io.BytesIO(clean_bytes), strict=False)
            _refuse_active_content(check.trailer)
            pages = len(check.pages)
        except DocumentRejected:
            raise
        except (
            PyPdfError,
            OSError,
            ValueError,
            OverflowError,  # a number in the file too large for an offset (a startxref of 23 digits)
            KeyError,
            TypeError,
            AttributeError,
            IndexError,
            RecursionError,
            AssertionError,
            NotImplementedError,
            MemoryError,
        ):
            raise unreadable from None
    return CleanDocument(clean_bytes, "application/pdf", pages=pages)


def _refuse_active_content(root) -> None:
    """Walk every object reachable from the trailer; refuse scripts, actions and attachments.

    pypdf decodes ``#xx`` escapes in names, so ``/J#61vaScript`` is caught too.
    """
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

    active = DocumentRejected(
        _l(
            "This PDF contains scripts, automatic actions or attached files, which are not "
            "accepted. Please print it to a new PDF or send a photo instead."
        )
    )
    seen: set[tuple[int, int]] = set()
    stack = [root]
    visited = 0
    while stack:
        node = stack.pop()
        if isinstance(node, IndirectObject):
            ref = (node.idnum, node.generation)
            if ref in seen:
                continue
            seen.add(ref)
            node = node.get_object()
        visited += 1
        if visited > PDF_MAX_OBJECTS:
            raise DocumentRejected(_l("This PDF is too complex to check. Please send a photo instead."))
        if isinstance(node, DictionaryObject):
            for key, value in node.items():
                if key in PDF_FORBIDDEN_KEYS:
                    raise active
                if key == "/S" and isinstance(value, NameObject) and value in PDF_FORBIDDEN_ACTIONS:
                    raise active
                if key != "/Parent":
                    stack.append(value)
        elif isinstance(node, ArrayObject):
            stack.extend(node)


# --- file names -----------------------------------------------------------------


def display_name(filename: str | None) -> str:
    """The seller's file name as display text only (it never reaches the disk).

    A name that no browser sends (a path, control characters, over 255
    characters) is refused rather than silently repaired: it can only be crafted.
    """
    name = unicodedata.normalize("NFC", filename or "")
    if len(name) > FILE_NAME_MAX:
        raise DocumentRejected(
            _l(
                "The file name is too long (over %(max)s characters). Please rename the file and choose it again.",
                max=FILE_NAME_MAX,
            )
        )
    if "/" in name or "\\" in name or any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise DocumentRejected(
            _l(
                "The file name contains characters that cannot be used (such as / or \\). "
                "Please rename the file and choose it again."
            )
        )
    name = " ".join(name.split()).strip()
    if len(name) > DISPLAY_NAME_MAX:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 5:
            name = stem[: DISPLAY_NAME_MAX - len(extension) - 2] + "…." + extension
        else:
            name = name[: DISPLAY_NAME_MAX - 1] + "…"
    return name
