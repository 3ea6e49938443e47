"""Turning a stored document into pixels the checks can measure.

JPEG and PNG are decoded by OpenCV. A PDF is not rendered (no renderer is
installed); the largest image embedded in its first page is used instead,
which is what a scanned document holds.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image
from pypdf import PdfReader


class NoImage(Exception):
    """The document holds no image the checks can look at (a text-only PDF)."""


def decode(data: bytes, content_type: str) -> np.ndarray:
    """The document as a BGR ``uint8`` array."""
    if content_type == "application/pdf":
        return _largest_pdf_image(data)
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError("the image could not be decoded")
    return pixels


def _largest_pdf_image(data: bytes) -> np.ndarray:
    reader = PdfReader(io.BytesIO(data))
    if not reader.pages:
        raise NoImage()
    best = None
    for embedded in reader.pages[0].images:
        image = embedded.image
        if best is None or image.width * image.height > best.width * best.height:
            best = image
    if best is None:
        raise NoImage()
    return cv2.cvtColor(np.asarray(best.convert("RGB")), cv2.COLOR_RGB2BGR)


def to_pil(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB))


def gray(pixels: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
