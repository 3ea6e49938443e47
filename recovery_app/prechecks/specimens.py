"""Generated identity documents for the demo, the pre-check tests and the benchmark.

Nothing here is a real document: pages are drawn with Pillow, the MRZ comes
from the ``mrz`` package's generator, and the "photo" is a drawn face that
OpenCV's frontal-face cascade recognises. A seed varies the person, the
page's background pattern and how the page lies in the photo, the way two
real photos of two real passports differ.
"""

from __future__ import annotations

import functools
import io
import math
import random
from pathlib import Path

import cv2
import numpy as np
from mrz.generator.td3 import TD3CodeGenerator
from PIL import Image, ImageDraw, ImageFilter, ImageFont

MONO_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")  # Debian: fonts-dejavu-core
SANS_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
PAGE_SIZE = (1250, 880)  # ID-3 proportions (125 x 88 mm) at 10 px/mm


def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def face(width: int = 300, seed: int = 0) -> Image.Image:
    """A drawn head and shoulders: eye band darker than the cheeks, a lit nose bridge."""
    rng = random.Random(seed)
    height = int(width * 1.27)
    skin = (rng.randint(200, 235), rng.randint(160, 190), rng.randint(130, 160))
    hair = (rng.randint(20, 70), rng.randint(15, 50), rng.randint(10, 40))
    image = Image.new("RGB", (width, height), (200 + rng.randint(-15, 15), 210, 225))
    draw = ImageDraw.Draw(image)
    cx, cy = width // 2, int(height * 0.52)
    fw, fh = int(width * 0.62), int(height * 0.62)
    shade = tuple(int(c * 0.85) for c in skin)
    draw.ellipse([cx - fw // 2 - 12, cy - fh // 2 - 30, cx + fw // 2 + 12, cy + fh // 4], fill=hair)
    draw.rectangle([cx - fw // 5, cy + fh // 3, cx + fw // 5, height], fill=shade)
    draw.ellipse(
        [cx - width // 2 - 20, cy + fh // 2, cx + width // 2 + 20, height + 200],
        fill=(rng.randint(20, 90), rng.randint(40, 90), rng.randint(80, 140)),
    )
    draw.ellipse([cx - fw // 2, cy - fh // 2, cx + fw // 2, cy + fh // 2], fill=skin)
    eye_y, eye_dx = cy - fh // 10, fw // 5
    for side in (-1, 1):
        x = cx + side * eye_dx
        draw.ellipse([x - fw // 9 - 4, eye_y - fh // 9 - 10, x + fw // 9 + 4, eye_y - fh // 9 + 2], fill=hair)
        draw.ellipse([x - fw // 9, eye_y - fh // 22, x + fw // 9, eye_y + fh // 22], fill=(245, 245, 245))
        draw.ellipse([x - fw // 22, eye_y - fh // 22, x + fw // 22, eye_y + fh // 22], fill=(30, 20, 15))
        draw.ellipse([x - fw // 8, eye_y + fh // 22, x + fw // 8, eye_y + fh // 10], fill=shade)
    draw.polygon(
        [(cx, eye_y), (cx - fw // 14, cy + fh // 8), (cx + fw // 14, cy + fh // 8)],
        fill=tuple(int(c * 0.9) for c in skin),
    )
    draw.ellipse([cx - fw // 6, cy + fh // 4 - 8, cx + fw // 6, cy + fh // 4 + 10], fill=(150, 70, 70))
    return image.filter(ImageFilter.GaussianBlur(width / 120))


def mrz_lines(
    *,
    surname: str,
    given_names: str,
    number: str,
    nationality: str = "JPN",
    birth: str = "900101",
    sex: str = "M",
    expiry: str = "320101",
) -> list[str]:
    """The two TD3 lines from the ``mrz`` package's generator (dates YYMMDD)."""
    code = TD3CodeGenerator("P", nationality, surname, given_names, number, nationality, birth, sex, expiry, "")
    return str(code).splitlines()


def break_check_digit(lines: list[str]) -> list[str]:
    """The same MRZ with the document number's check digit (line 2, position 10) off by one."""
    second = lines[1]
    wrong = str((int(second[9]) + 1) % 10)
    return [lines[0], second[:9] + wrong + second[10:]]


def passport_page(lines: list[str], *, seed: int = 0, surname: str = "", given_names: str = "") -> Image.Image:
    """A passport data page: tinted guilloche background, photo, printed fields and the MRZ."""
    rng = random.Random(seed)
    width, height = PAGE_SIZE
    tint = (rng.randint(205, 235), rng.randint(215, 235), rng.randint(215, 240))
    page = Image.new("RGB", PAGE_SIZE, tint)
    draw = ImageDraw.Draw(page)
    phase, freq = rng.uniform(0, math.tau), rng.uniform(0.010, 0.025)
    line_colour = tuple(max(0, c - 35) for c in tint)
    for k in range(0, height, 18):
        points = [(x, k + 12 * math.sin(freq * x + phase + k / 40)) for x in range(0, width, 8)]
        draw.line(points, fill=line_colour, width=2)
    page.paste(face(300, seed), (60, 120))
    label, value = _font(SANS_FONT, 22), _font(SANS_FONT, 34)
    second = lines[1]
    fields = [
        ("Type / Surname", surname or lines[0][5:].split("<<")[0].replace("<", " ")),
        ("Given names", given_names or lines[0][5:].split("<<")[1].replace("<", " ").strip()),
        ("Nationality", second[10:13]),
        ("Date of birth", second[13:19]),
        ("Sex", second[20]),
        ("Date of expiry", second[21:27]),
        ("Passport No.", second[0:9].replace("<", "")),
    ]
    draw.text((60, 40), "PASSPORT", font=_font(SANS_FONT, 40), fill=(40, 40, 90))
    y = 110
    for caption, text in fields:
        draw.text((420, y), caption, font=label, fill=(70, 70, 100))
        draw.text((420, y + 24), text, font=value, fill=(20, 20, 30))
        y += 70
    mrz_font = _font(MONO_FONT, 36)
    draw.rectangle([0, height - 170, width, height], fill=(238, 238, 232))
    for row, text in enumerate(lines):
        draw.text((45, height - 150 + row * 62), text, font=mrz_font, fill=(10, 10, 10))
    return page


def card(seed: int = 0) -> Image.Image:
    """A generic photo card (licence or residence card front) with a face and text."""
    rng = random.Random(seed)
    page = Image.new("RGB", (1200, 760), (rng.randint(200, 235), rng.randint(215, 240), rng.randint(200, 230)))
    draw = ImageDraw.Draw(page)
    for k in range(12):
        draw.rectangle([0, k * 63, 1200, k * 63 + 20], fill=(rng.randint(180, 220), 220, rng.randint(190, 230)))
    page.paste(face(300, seed + 1000), (850, 250))
    font = _font(SANS_FONT, 34)
    for row in range(7):
        draw.text(
            (60, 120 + row * 80),
            f"{rng.randint(10**7, 10**8)} " + "ABCDEFGH"[row] * rng.randint(3, 12),
            font=font,
            fill=(20, 20, 30),
        )
    return page


def photo_of(
    document: Image.Image, *, seed: int = 0, size: tuple[int, int] = (1600, 1200), noise: bool = True
) -> Image.Image:
    """The document lying on a table, as a phone would photograph it."""
    rng = random.Random(seed)
    table = (rng.randint(90, 160), rng.randint(70, 130), rng.randint(50, 110))
    photo = Image.new("RGB", size, table)
    draw = ImageDraw.Draw(photo)
    for k in range(0, size[1], 40):  # wood grain: texture the sharpness measure can see
        draw.line(
            [(0, k + rng.randint(-5, 5)), (size[0], k + rng.randint(-5, 5))], fill=tuple(c - 20 for c in table), width=3
        )
    scale = rng.uniform(0.82, 0.92) * size[0] / document.width
    placed = document.resize((int(document.width * scale), int(document.height * scale)), Image.LANCZOS)
    placed = placed.rotate(rng.uniform(-2.5, 2.5), expand=True, fillcolor=table, resample=Image.BICUBIC)
    x = (size[0] - placed.width) // 2 + rng.randint(-40, 40)
    y = (size[1] - placed.height) // 2 + rng.randint(-40, 40)
    photo.paste(placed, (x, y))
    return with_noise(photo, seed) if noise else photo


def selfie(seed: int = 0, size: tuple[int, int] = (1200, 1600), noise: bool = True) -> Image.Image:
    rng = random.Random(seed)
    wall = (rng.randint(150, 200), rng.randint(150, 200), rng.randint(140, 190))
    photo = Image.new("RGB", size, wall)
    draw = ImageDraw.Draw(photo)
    for row, y in enumerate(range(0, size[1], 45)):  # a brick wall behind the seller
        draw.line([(0, y), (size[0], y)], fill=tuple(c - 40 for c in wall), width=3)
        for x in range((row % 2) * 60, size[0], 120):
            draw.line([(x, y), (x, y + 45)], fill=tuple(c - 40 for c in wall), width=3)
    head = face(700, seed)
    photo.paste(head, ((size[0] - head.width) // 2, 250))
    return with_noise(photo, seed) if noise else photo


def with_noise(image: Image.Image, seed: int = 0, sigma: float = 6.0) -> Image.Image:
    """Camera sensor noise: a real photo is never perfectly flat."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(image, dtype=np.float32)
    noisy = np.clip(pixels + rng.normal(0, sigma, pixels.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy)


def blank(size: tuple[int, int] = (1600, 1200), colour=(180, 175, 165)) -> Image.Image:
    return Image.new("RGB", size, colour)


def blurred(image: Image.Image, radius: float = 6) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius))


def with_glare(image: Image.Image, share: float = 0.12, seed: int = 0) -> Image.Image:
    """A blown-out reflection: a white ellipse covering about ``share`` of the image, soft at the edge."""
    rng = random.Random(seed)
    glare = image.copy()
    mask = Image.new("L", image.size, 0)
    area = share * image.width * image.height
    rx = math.sqrt(area / math.pi * 1.6)
    ry = area / (math.pi * rx)
    cx = rng.uniform(rx, image.width - rx)
    cy = rng.uniform(ry, image.height - ry)
    ImageDraw.Draw(mask).ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    glare.paste((255, 255, 255), mask=mask.filter(ImageFilter.GaussianBlur(8)))
    return glare


def darkened(image: Image.Image, factor: float = 0.15) -> Image.Image:
    return image.point(lambda v: int(v * factor))


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def scaled_copy(data: bytes, factor: float = 0.7, quality: int = 70) -> bytes:
    """What a fraudster does to a stolen photo: shrink it and save it again as JPEG."""
    image = Image.open(io.BytesIO(data))
    image = image.resize((int(image.width * factor), int(image.height * factor)), Image.LANCZOS)
    return jpeg(image, quality)


def cropped_copy(data: bytes, share: float = 0.03) -> bytes:
    image = Image.open(io.BytesIO(data))
    dx, dy = int(image.width * share), int(image.height * share)
    return jpeg(image.crop((dx, dy, image.width - dx, image.height - dy)), 85)


# --- realistic captures: what sellers actually send ---------------------------------


def phone_photo(document: Image.Image, *, seed: int = 0, size: tuple[int, int] = (1600, 1200)) -> Image.Image:
    """A hand-held phone photo of ``document``: seen at a slight angle
    (perspective), lit unevenly, a little out of focus, with sensor noise."""
    rng = random.Random(seed)
    flat = photo_of(document, seed=seed, size=size, noise=False)
    return _captured(_perspective(flat, rng, rng.uniform(0.01, 0.045)), rng)


def scan(document: Image.Image, *, seed: int = 0) -> Image.Image:
    """A flatbed scan at about 300 dpi: white lid, nearly straight, even light."""
    rng = random.Random(seed)
    margin = rng.randint(40, 90)
    sheet = Image.new("RGB", (document.width + 2 * margin, document.height + 2 * margin), (246, 246, 244))
    sheet.paste(document, (margin + rng.randint(-20, 20), margin + rng.randint(-20, 20)))
    sheet = sheet.rotate(rng.uniform(-1.0, 1.0), expand=False, fillcolor=(246, 246, 244), resample=Image.BICUBIC)
    return _noisy(sheet.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.7))), seed, 2.5)


def phone_selfie(seed: int = 0, size: tuple[int, int] = (1200, 1600)) -> Image.Image:
    """A selfie taken at home holding the card: a room behind (wall, door,
    window, shelves in their own places and colours), the head where the arm
    put it, uneven light, a slight blur and noise. Two people's selfies differ
    as much as two rooms do, not only by the face."""
    rng = random.Random(seed + 7000)
    wall = (rng.randint(120, 230), rng.randint(120, 230), rng.randint(110, 220))
    photo = Image.new("RGB", size, wall)
    draw = ImageDraw.Draw(photo)
    for _ in range(rng.randint(3, 6)):  # furniture, frames, a door or a window
        x0, y0 = rng.randint(-200, size[0] - 100), rng.randint(-200, size[1] - 300)
        x1, y1 = x0 + rng.randint(150, 700), y0 + rng.randint(150, 900)
        draw.rectangle([x0, y0, x1, y1], fill=tuple(rng.randint(30, 250) for _ in range(3)))
    head = face(rng.randint(560, 760), seed)
    photo.paste(head, ((size[0] - head.width) // 2 + rng.randint(-160, 160), rng.randint(120, 320)))
    held = (
        card(seed + 3000)
        .resize((420, 266), Image.LANCZOS)
        .rotate(rng.uniform(-12, 12), expand=True, fillcolor=(200, 160, 140))
    )
    photo.paste(held, (rng.randint(40, size[0] - held.width - 40), size[1] - held.height - rng.randint(40, 200)))
    return _captured(photo, rng)


def capture_jpeg(image: Image.Image, seed: int = 0) -> bytes:
    """JPEG at the quality a phone or a messaging app leaves (70-92)."""
    return jpeg(image, random.Random(seed + 9000).randint(70, 92))


def _perspective(image: Image.Image, rng: random.Random, tilt: float) -> Image.Image:
    """Corners moved inwards by up to ``tilt`` of the size: the camera was not square on."""
    w, h = image.size
    corners = np.float32([(0, 0), (w, 0), (w, h), (0, h)])
    moved = np.float32(
        [
            (x + (1 if x == 0 else -1) * rng.uniform(0, tilt) * w, y + (1 if y == 0 else -1) * rng.uniform(0, tilt) * h)
            for x, y in corners
        ]
    )
    pixels = np.asarray(image)
    edge = tuple(int(c) for c in pixels[2, 2])
    warped = cv2.warpPerspective(
        pixels,
        cv2.getPerspectiveTransform(corners, moved),
        (w, h),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=edge,
    )
    return Image.fromarray(warped)


def _captured(image: Image.Image, rng: random.Random) -> Image.Image:
    """Uneven light (a gradient from one side, 70-110 %), a slight blur, noise."""
    w, h = image.size
    angle = rng.uniform(0, math.tau)
    xs = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    ys = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    ramp = (xs * math.cos(angle) + ys * math.sin(angle) + 1.4142) / 2.8284
    low, high = rng.uniform(0.7, 0.9), rng.uniform(0.95, 1.1)
    light = (low + (high - low) * ramp)[..., None]
    lit = np.clip(np.asarray(image, dtype=np.float32) * light, 0, 255).astype(np.uint8)
    soft = cv2.GaussianBlur(lit, (0, 0), rng.uniform(0.4, 1.1))
    return _noisy(Image.fromarray(soft), rng.randint(0, 10**6), rng.uniform(3.0, 7.0))


def _noisy(image: Image.Image, seed: int, sigma: float) -> Image.Image:
    """Sensor noise: a window, at a random place, of one field of Gaussian noise
    drawn once per process (drawing millions of normal numbers for every image
    was most of a demo photo's making; noise has no place to be recognised by)."""
    rng = random.Random(seed)
    field = _noise_field()
    width, height = image.size
    top, left = rng.randrange(field.shape[0] - height + 1), rng.randrange(field.shape[1] - width + 1)
    window = field[top : top + height, left : left + width]
    pixels = np.asarray(image, dtype=np.int16) + (window * np.float32(sigma)).astype(np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


@functools.lru_cache(maxsize=1)
def _noise_field(side: int = 2000) -> np.ndarray:
    return np.random.default_rng(20260302).standard_normal((side, side, 3), dtype=np.float32)


def card_back(seed: int = 0) -> Image.Image:
    """The back of a card: printed notes and a barcode strip, no face."""
    rng = random.Random(seed + 500)
    page = Image.new("RGB", (1200, 760), (rng.randint(215, 240), rng.randint(215, 240), rng.randint(205, 230)))
    draw = ImageDraw.Draw(page)
    font = _font(SANS_FONT, 28)
    for row in range(6):
        draw.text(
            (60, 60 + row * 60),
            f"{rng.randint(10**5, 10**6)} " + "NOTES"[row % 5] * rng.randint(4, 20),
            font=font,
            fill=(40, 40, 50),
        )
    x = 60
    while x < 1140:
        bar = rng.randint(3, 12)
        draw.rectangle([x, 480, x + bar, 700], fill=(15, 15, 20))
        x += bar + rng.randint(3, 10)
    return page
