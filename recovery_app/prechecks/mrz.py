"""Passport machine-readable zone: the band found with OpenCV morphology, only
that band read by Tesseract, every check digit validated with the ``mrz``
package, then compared with the case.

Finding the band first is what makes this fast: OCR of a whole photo costs
seconds, OCR of a 2-line strip a few hundred milliseconds. The band is dark,
evenly spaced text in two long lines: a black-hat filter keeps dark strokes on
a light ground, a horizontal gradient and a closing join each line's
characters into one long blob, and the widest such blobs (with their
neighbour line) make the band.

Tesseract reads with its English model restricted to the MRZ alphabet (no
Debian or PyPI package ships OCR-B or MRZ training data; see docs/prechecks.md).
Look-alikes are then corrected field by field (``O`` in a digit field is ``0``),
and a run of ``<`` fillers, which OCR often counts wrong, is stretched or
shortened so each line has its 44 characters with the check digits last.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime

import cv2
import numpy as np
import pytesseract
from mrz.base.countries_ops import is_code
from mrz.base.functions import hash_string
from mrz.checker.td3 import TD3CodeChecker

# Tesseract spreads one small image over every core by default; on a busy
# machine the threads wait on each other. One thread per OCR, and more worker
# processes for throughput (flask prechecks work).
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

TD3_LENGTH = 44
NAME_FIELD_LENGTH = 39
FIND_SIDE = 900  # the band is looked for on a copy this long: enough for 2 lines of text
# Heights (px) the band is scaled to for OCR, tried in order: the first reads
# most photos (measured by bench/precheck.py), the others rescue the rest.
OCR_BAND_HEIGHTS = (90, 110, 70)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
TESSERACT_CONFIG = f"--psm 6 -c tessedit_char_whitelist={ALPHABET} -c load_system_dawg=F -c load_freq_dawg=F"

TO_DIGIT = str.maketrans(
    {
        "O": "0",
        "Q": "0",
        "D": "0",
        "U": "0",
        "I": "1",
        "L": "1",
        "Z": "2",
        "S": "5",
        "G": "6",
        "B": "8",
        "T": "7",
        "A": "4",
    }
)
TO_LETTER = str.maketrans({"0": "O", "1": "I", "2": "Z", "5": "S", "6": "G", "8": "B", "4": "A", "7": "T"})
# Line 2 of a TD3: (start, end, kind) with kind d = digits, a = letters, x = either.
LINE2_FIELDS = (
    (0, 9, "x"),
    (9, 10, "d"),
    (10, 13, "a"),
    (13, 19, "d"),
    (19, 20, "d"),
    (20, 21, "a"),
    (21, 27, "d"),
    (27, 28, "d"),
    (28, 42, "x"),
    (42, 43, "d"),
    (43, 44, "d"),
)
# What OCR of a monospace MRZ confuses, for repairs that a check digit or the
# list of country codes confirms (never guessed without that proof).
LOOKALIKES = {
    "1": "TI7",
    "7": "T1",
    "T": "17",
    "I": "1JL",
    "J": "I1S3",
    "S": "5J",
    "5": "S",
    "0": "OQD",
    "O": "0Q",
    "Q": "0O",
    "D": "0",
    "2": "Z",
    "Z": "2",
    "8": "B",
    "B": "8",
    "6": "G",
    "G": "6",
    "3": "J",
}
LINE2_SHAPE = re.compile(r"[A-Z0-9<]{9}\d[A-Z<]{3}\d{6}\d[MFX<]\d{6}\d[A-Z0-9<]{14}[\d<]\d")


@dataclass
class MrzReading:
    found: bool
    lines: list[str] = field(default_factory=list)
    surname: str = ""
    given_names: str = ""
    nationality: str = ""
    birth_date: str = ""  # ISO date
    expiry_date: str = ""  # ISO date
    document_type: str = ""
    failed_check_digits: list[str] = field(default_factory=list)
    # The second line could not be put into its 44-character shape: fields are
    # shifted, so check digits prove nothing either way.
    garbled: bool = False


def read(image, today: date) -> MrzReading:
    """Find and read a TD3 (passport) MRZ in a grey image (or an image file's bytes).

    The band is read at one size first; only when that reading is incomplete
    or a check digit fails is it read again at other sizes, and the reading
    with the fewest failed check digits is kept. A good photo costs one OCR.
    """
    gray = _as_gray(image)
    band = find_band(gray)
    if band is None:
        return MrzReading(found=False)
    best = None
    for height in OCR_BAND_HEIGHTS:
        reading = _read_band(band, height, today)
        if best is None or _rank(reading) < _rank(best):
            best = reading
        if reading.found and not reading.garbled and not reading.failed_check_digits:
            break
    return best


def _rank(reading: MrzReading) -> tuple:
    return (not reading.found, reading.garbled, len(reading.failed_check_digits))


def _read_band(band: np.ndarray, height: int, today: date) -> MrzReading:
    text = pytesseract.image_to_string(_for_ocr(band, height), config=TESSERACT_CONFIG)
    cleaned = [line for line in (re.sub(r"[^A-Z0-9<]", "", raw) for raw in text.splitlines()) if len(line) >= 10]
    longest = [index for index, line in enumerate(cleaned) if len(line) >= 30 and "<" in line]
    if not longest:
        return MrzReading(found=False)
    last = longest[-1]
    # Line 1 is the line above; OCR often shortens its run of fillers, _fix_line1 restores it.
    first = cleaned[last - 1] if last > 0 and "<<" in cleaned[last - 1] else ""
    second = _fix_line2(cleaned[last])
    if second is None:
        return MrzReading(found=True, lines=[first, cleaned[last]], garbled=True)
    lines = _repair([_fix_line1(first), second])
    checker = TD3CodeChecker("\n".join(lines), check_expiry=False)
    fields = checker.fields()
    return MrzReading(
        found=True,
        lines=lines,
        surname=fields.surname,
        given_names=fields.name,
        nationality=fields.nationality,
        birth_date=_as_date(fields.birth_date, today, future=False),
        expiry_date=_as_date(fields.expiry_date, today, future=True),
        document_type=fields.document_type,
        failed_check_digits=[name for name, ok in checker.report.falses],
    )


def _as_gray(image) -> np.ndarray:
    if isinstance(image, (bytes, bytearray)):
        decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_GRAYSCALE)
        if decoded is None:
            raise ValueError("the image could not be decoded")
        return decoded
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def find_band(gray: np.ndarray) -> np.ndarray | None:
    """The MRZ strip cut from ``gray`` at full resolution, or None."""
    height, width = gray.shape[:2]
    scale = min(1.0, FIND_SIDE / max(height, width))
    small = cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (3, 3), 0)
    line_kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (13, 5))
    blackhat = cv2.morphologyEx(small, cv2.MORPH_BLACKHAT, line_kernel)
    gradient = np.absolute(cv2.Sobel(blackhat, cv2.CV_32F, 1, 0, ksize=-1))
    gradient = cv2.normalize(gradient, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    joined = cv2.morphologyEx(gradient, cv2.MORPH_CLOSE, line_kernel)
    mask = cv2.threshold(joined, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1]
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (31, 3)))
    mask = cv2.erode(mask, None, iterations=1)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    lines = [cv2.boundingRect(c) for c in contours]
    lines = [(x, y, w, h) for x, y, w, h in lines if w > 0.35 * small.shape[1] and w > 8 * h]
    if not lines:
        return None
    widest = max(lines, key=lambda box: box[2])
    # The band is the widest line and the lines just above or below it that span the same width.
    band = [
        box
        for box in lines
        if abs(box[1] - widest[1]) < 4 * widest[3]
        and box[2] > 0.8 * widest[2]
        and min(box[0] + box[2], widest[0] + widest[2]) - max(box[0], widest[0]) > 0.7 * widest[2]
    ]
    x0 = min(b[0] for b in band)
    y0 = min(b[1] for b in band)
    x1 = max(b[0] + b[2] for b in band)
    y1 = max(b[1] + b[3] for b in band)
    pad_x, pad_y = int(0.04 * (x1 - x0)), max(6, int(0.6 * widest[3]))
    x0, y0 = max(0, x0 - pad_x), max(0, y0 - pad_y)
    x1, y1 = min(small.shape[1], x1 + pad_x), min(small.shape[0], y1 + pad_y)
    return gray[int(y0 / scale) : int(y1 / scale) + 1, int(x0 / scale) : int(x1 / scale) + 1]


def _for_ocr(band: np.ndarray, height: int) -> np.ndarray:
    """The band scaled to ``height`` pixels (two lines and the margin around them), evened out."""
    factor = height / max(band.shape[0], 1)
    sized = cv2.resize(
        band, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA
    )
    return cv2.normalize(sized, None, 0, 255, cv2.NORM_MINMAX)


def _refill(line: str, keep_tail: int) -> str:
    """Stretch or shorten the longest ``<`` run so the line has 44 characters
    and its last ``keep_tail`` characters stay where they are."""
    if len(line) == TD3_LENGTH:
        return line
    runs = [(m.end() - m.start(), m.start(), m.end()) for m in re.finditer(r"<{2,}", line[: len(line) - keep_tail])]
    if not runs:
        return (line + "<" * TD3_LENGTH)[:TD3_LENGTH] if keep_tail == 0 else line
    length, start, end = max(runs)
    missing = TD3_LENGTH - len(line)
    if length + missing < 1:
        return line
    return line[:start] + "<" * (length + missing) + line[end:]


def _fix_line1(line: str) -> str:
    """Document code, issuing state, then the names and their fillers. Names
    hold letters only, and a name never holds three fillers in a row: from
    there on the line is fillers, whatever OCR saw in them."""
    if not line:
        return ""
    line = line[:2] + line[2:].translate(TO_LETTER)
    end = line.find("<<<", 5)
    if end != -1:
        line = line[:end]
    return (line + "<" * TD3_LENGTH)[:TD3_LENGTH]


def _fix_line2(line: str) -> str | None:
    line = _refill(line, 2)
    if len(line) != TD3_LENGTH:
        return None
    parts = []
    for start, end, kind in LINE2_FIELDS:
        part = line[start:end]
        if kind == "d":
            part = part.translate(TO_DIGIT)
        elif kind == "a":
            part = part.translate(TO_LETTER)
        parts.append(part)
    fixed = "".join(parts)
    return fixed if LINE2_SHAPE.fullmatch(fixed) else None


def _repair(lines: list[str]) -> list[str]:
    """Undo single look-alike misreads where the MRZ itself proves the fix:
    a document or personal number whose check digit fails but holds after one
    look-alike swap, and a country code that is no code but becomes one."""
    first, second = lines
    for start, end in ((0, 9), (28, 42)):
        field_, digit = second[start:end], second[end]
        if hash_string(field_) == digit:
            continue
        for i, char in enumerate(field_):
            fixed = next(
                (
                    alt
                    for alt in LOOKALIKES.get(char, "")
                    if hash_string(field_[:i] + alt + field_[i + 1 :]) == digit
                    and _composite_holds(second[: start + i] + alt + second[start + i + 1 :])
                ),
                None,
            )
            if fixed is not None:
                second = second[: start + i] + fixed + second[start + i + 1 :]
                break
    nationality = _country(second[10:13])
    second = second[:10] + nationality + second[13:]
    if first:
        code = _country(first[2:5])
        # "<J" is often read as "SI": once the code proves the J, the S was the filler.
        filler = "<" if code != first[2:5] and first[1] in "SK" else first[1]
        first = first[0] + filler + code + first[5:]
    return [first, second]


def _composite_holds(second: str) -> bool:
    """The last digit checks the number, the dates and the personal number with
    their own digits: a repair that a forger's wrong digit would need fails it."""
    return hash_string(second[0:10] + second[13:20] + second[21:43]) == second[43]


def _country(code: str) -> str:
    if is_code(code):
        return code
    for i, char in enumerate(code):
        for alt in LOOKALIKES.get(char, ""):
            if alt.isalpha() and is_code(code[:i] + alt + code[i + 1 :]):
                return code[:i] + alt + code[i + 1 :]
    return code


def _as_date(yymmdd: str, today: date, *, future: bool) -> str:
    """YYMMDD to ISO. Expiry dates are this century; birth dates are in the past."""
    if not re.fullmatch(r"\d{6}", yymmdd or ""):
        return ""
    yy, mm, dd = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    century = 2000 if future or yy <= today.year % 100 else 1900
    try:
        return date(century + yy, mm, dd).isoformat()
    except ValueError:
        return ""


def is_expired(reading: MrzReading, submitted_at: datetime) -> bool:
    return bool(reading.expiry_date) and date.fromisoformat(reading.expiry_date) < submitted_at.date()


def _one_misread(expected: str, read: str) -> bool:
    """One letter wrong, extra or missing, in a word of four letters or more:
    what OCR does to a name (``INOQUE``, ``SASAKT``, ``RINC``). A different
    person's name differs by more; the reviewer sees the name as read."""
    if max(len(expected), len(read)) < 4 or abs(len(expected) - len(read)) > 1 or expected == read:
        return expected == read
    if len(expected) == len(read):
        return sum(a != b for a, b in zip(expected, read, strict=True)) == 1
    shorter, longer = sorted((expected, read), key=len)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def name_tokens(text: str) -> list[str]:
    """Upper-case Latin letters only: accents folded, ``<`` fillers, spaces and
    punctuation all separate words."""
    folded = unicodedata.normalize("NFKD", text or "")
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).upper()
    return [token for token in re.split(r"[^A-Z]+", folded) if token]


def name_matches(reading: MrzReading, romanised_name: str) -> bool:
    """The MRZ name against the name the user gave, in any order (family name
    first or last). Long names are cut short in the MRZ, so a truncated last
    word may be a prefix of the user's word."""
    mrz_words = name_tokens(f"{reading.surname} {reading.given_names}")
    user_words = name_tokens(romanised_name)
    if not mrz_words or not user_words or len(mrz_words) != len(user_words):
        return False
    # The name field holds 39 characters: surname, "<<", given names joined by "<".
    field_full = len(reading.surname) + 2 + len(reading.given_names) >= NAME_FIELD_LENGTH
    remaining = list(user_words)
    for index, word in enumerate(mrz_words):
        truncated = field_full and index == len(mrz_words) - 1
        word = re.sub(r"(.)\1{2,}$", "", word)  # fillers read as a run of one letter ("ITSUKISSSS")
        match = next(
            (u for u in remaining if u == word or (truncated and u.startswith(word)) or _one_misread(u, word)), None
        )
        if match is None:
            return False
        remaining.remove(match)
    return True
