"""Steps the browser tests share: people made in the live database, photos of an
identity card drawn with Pillow, a seller who lost their phone opening a
recovery case through the real pages, staff signing in with a TOTP code, and
a watch on JavaScript errors.

Buttons are found by where their form posts and links by where they lead, so
the same step works in Japanese and in English; the words a seller reads are
checked against ``WORDS``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import pyotp
from PIL import Image, ImageDraw, ImageFont

from tests.factories import Factory
from tests.helpers import TEST_PASSWORD

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
BROWSER_LOCALE = {"ja": "ja-JP", "en": "en-US"}
REFERENCE = re.compile(r"RC-[A-Z0-9]{4}-[A-Z0-9]{4}")

# What the pages say, in each language (from the catalogs).
WORDS = {
    "ja": {
        "enter_code": "確認コードを入力",
        "no_code": "コードが届きませんか？",
        "none_usable": "どれも使えません",
        "start_title": "本人確認書類でアカウントへのアクセスを取り戻す",
        "sent": "書類を受け付けました。審査結果はメールでお知らせします。",
        "waiting": "審査待ち",
        "due_by": "審査結果の予定時刻",
        "setup": "2段階認証の設定",
        "welcome": "ようこそ、{name} さん",
        "queue": "審査キュー",
        "claimed": "案件 {ref} を担当しました。",
        "approved_flash": "案件 {ref} を承認しました。出品者の2段階認証はリセットされました。",
        "rejected_flash": "案件 {ref} を却下しました。出品者にはメールでお知らせします。",
        "not_approved": "承認されませんでした",
        "not_confirmed": "お送りいただいた書類では本人確認ができませんでした。",
        "rejected_subject": "本人確認ができませんでした（{ref}）",
        "reason_unreadable": "理由：書類が読み取れない",
        "event_requested": "復旧申請を送信",
    },
    "en": {
        "enter_code": "Enter your code",
        "no_code": "Didn't get a code?",
        "none_usable": "I can't use any of these",
        "start_title": "Recover access with your identity documents",
        "sent": "Your documents were sent. We will e-mail you the result.",
        "waiting": "Waiting for review",
        "due_by": "Decision due by",
        "setup": "Set up 2-step verification",
        "welcome": "Welcome, {name}",
        "queue": "Review queue",
        "claimed": "You now hold case {ref}.",
        "approved_flash": "Case {ref} is approved. The seller's 2-step verification was reset.",
        "rejected_flash": "Case {ref} was rejected. The seller will be told by e-mail.",
        "not_approved": "Not approved",
        "not_confirmed": "We could not confirm your identity with these documents.",
        "rejected_subject": "We could not confirm your identity ({ref})",
        "reason_unreadable": "Reason: Documents unreadable",
        "event_requested": "Recovery case opened",
    },
}


# --- people ---------------------------------------------------------------------


def fits_a_phone(page, where: str) -> None:
    """On a phone: the top bar keeps to two rows (brand, languages and sign-out;
    then the sections), and the page does not scroll sideways at 390 px nor on
    the narrowest phones, 320 px wide (WCAG 1.4.10)."""
    bar = page.locator("header.topbar").bounding_box()["height"]
    assert bar <= 2 * 44 + 16, f"{where}: the top bar is {bar:.0f} px tall, more than two rows"
    sideways = "document.documentElement.scrollWidth - window.innerWidth"
    assert page.evaluate(sideways) <= 1, f"{where}: the page scrolls sideways"
    page.set_viewport_size({"width": 320, "height": PHONE["viewport"]["height"]})
    try:
        wide = page.evaluate(sideways)
        assert wide <= 1, f"{where}: at 320 px the page scrolls sideways by {wide} px"
    finally:
        page.set_viewport_size(PHONE["viewport"])


@dataclass
class Person:
    email: str
    name: str
    locale: str
    totp_seed: str | None

    def code(self) -> str:
        return pyotp.TOTP(self.totp_seed).now()


def create_person(live_app, role: str, *, locale: str, name: str, shop: str | None = None) -> Person:
    """A user with a confirmed authenticator app, committed to the live database."""
    from recovery_app.extensions import db

    with live_app.app_context():
        make = Factory(live_app)
        account = make.account(shop) if role.startswith("seller") else None
        user = make.user(
            role=role,
            locale=locale,
            display_name=name,
            account=account,
            email=f"{role.replace('_', '-')}-{locale}-{random.randrange(10**9)}@example.test",
        )
        person = Person(user.email, name, locale, user._test_totp_seed)
        db.session.commit()
        db.session.remove()
    return person


# --- photos -----------------------------------------------------------------------


def _font(size: int):
    return ImageFont.load_default(size=size)


def _card(side: str, holder: str, seed: int) -> Image.Image:
    """A driving-licence-like card, 1200×760: border, title band, photo box, text lines, a little noise."""
    rng = random.Random(seed)
    width, height = 1200, 760
    image = Image.new("RGB", (width, height), (206, 214, 222))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle(
        (30, 30, width - 30, height - 30), radius=36, fill=(238, 243, 232), outline=(60, 90, 70), width=6
    )
    draw.rectangle((30, 60, width - 30, 140), fill=(72, 128, 96))
    title = "DRIVER'S LICENSE" if side == "front" else "DRIVER'S LICENSE - REVERSE"
    draw.text((70, 74), title, font=_font(48), fill=(255, 255, 255))
    if side == "front":
        draw.rectangle((820, 190, 1120, 580), fill=(170, 180, 196), outline=(60, 60, 60), width=3)
        draw.ellipse((905, 240, 1035, 390), fill=(231, 200, 170))  # head
        draw.pieslice((860, 380, 1080, 640), 180, 360, fill=(70, 80, 120))  # shoulders
        lines = [
            f"NAME  {holder}",
            "BORN  1988-04-12",
            f"ADDRESS  {rng.randint(1, 9)}-{rng.randint(1, 30)} Chiyoda",
            "VALID UNTIL  2029-05-12",
            f"NUMBER  {rng.randint(10**11, 10**12 - 1)}",
        ]
    else:
        lines = [
            "REMARKS",
            f"2024-06-01  NEW ADDRESS {rng.randint(1, 9)}-{rng.randint(1, 30)} Minato",
            "CONDITIONS  NONE",
            "",
            "ISSUED BY  PUBLIC SAFETY COMMISSION",
        ]
    for row, text in enumerate(lines):
        y = 200 + row * 80
        draw.text((80, y), text, font=_font(34), fill=(25, 30, 40))
        draw.line((80, y + 50, 780 if side == "front" else 1120, y + 50), fill=(170, 178, 170), width=2)
    for _ in range(6000):
        image.putpixel(
            (rng.randrange(width), rng.randrange(height)), (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        )
    return image


def _selfie(holder: str, seed: int) -> Image.Image:
    """A portrait photo, 900×1200, of a face with the card held beside it."""
    rng = random.Random(seed)
    image = Image.new("RGB", (900, 1200), (190, 200, 210))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 900, 900, 1200), fill=(120, 110, 100))  # table
    draw.pieslice((150, 640, 650, 1300), 180, 360, fill=(60, 70, 110))  # shoulders
    draw.ellipse((270, 260, 530, 600), fill=(233, 198, 166))  # face
    draw.chord((262, 220, 538, 470), 180, 360, fill=(40, 30, 25))  # hair
    draw.ellipse((335, 390, 365, 410), fill=(40, 40, 40))
    draw.ellipse((435, 390, 465, 410), fill=(40, 40, 40))
    draw.arc((350, 470, 450, 530), 20, 160, fill=(150, 60, 60), width=5)
    card = _card("front", holder, seed).resize((420, 266))
    image.paste(card, (450, 700))
    draw.ellipse((420, 840, 500, 930), fill=(233, 198, 166))  # hand holding it
    for _ in range(4000):
        image.putpixel(
            (rng.randrange(900), rng.randrange(1200)), (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        )
    return image


def document_photos(folder: Path, holder: str = "YAMADA HANAKO") -> dict[str, Path]:
    """Front and back of a licence and a selfie, saved as JPEG files like a phone camera would."""
    seed = random.randrange(10**6)
    images = {
        "front": _card("front", holder, seed),
        "back": _card("back", holder, seed + 1),
        "selfie": _selfie(holder, seed + 2),
    }
    paths = {}
    for side, image in images.items():
        path = folder / f"{side}.jpg"
        image.save(path, "JPEG", quality=88)
        paths[side] = path
    return paths


# --- the browser --------------------------------------------------------------------


class BrowserErrors:
    """Every uncaught exception and console error of a page (CSP violations
    included); ``check()`` fails on any. The browser's own request for
    /favicon.ico, which the app does not serve, is not an error of a page."""

    def __init__(self, page):
        self.seen: list[str] = []
        page.on("pageerror", lambda error: self.seen.append(f"{page.url}: uncaught {error}"))
        page.on("console", lambda message: self._console(page, message))

    def _console(self, page, message) -> None:
        if message.type != "error" or message.location.get("url", "").endswith("/favicon.ico"):
            return
        self.seen.append(f"{page.url}: console {message.text} ({message.location.get('url', '')})")

    def check(self) -> None:
        assert not self.seen, "errors in the browser:\n" + "\n".join(self.seen)


def open_page(new_context, language: str, device: dict):
    page = new_context(BROWSER_LOCALE[language], **device).new_page()
    return page, BrowserErrors(page)


def sign_in_with_password(page, base: str, email: str) -> None:
    page.goto(f"{base}/sign-in")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", TEST_PASSWORD)
    with page.expect_navigation():
        page.click("form[action='/sign-in'] button[type=submit]")


def sign_in_staff(page, base: str, person: Person) -> None:
    """Password, then the code of the authenticator app: the real two steps."""
    sign_in_with_password(page, base, person.email)
    assert page.url == f"{base}/sign-in/code"
    page.fill("input[name=code]", person.code())
    with page.expect_navigation():
        page.click("form[action='/sign-in/code'] button[type=submit]")


def reach_recovery_start(page, base: str, seller: Person) -> None:
    """The seller's phone is gone: password, then "Didn't get a code?" → "I can't use any of these"."""
    words = WORDS[seller.locale]
    sign_in_with_password(page, base, seller.email)
    assert page.url == f"{base}/sign-in/code"
    assert page.inner_text("h1") == words["enter_code"]
    other_ways = page.locator("a[href='/sign-in/other-ways']")
    assert other_ways.inner_text() == words["no_code"]
    other_ways.click()
    page.wait_for_url(f"{base}/sign-in/other-ways")
    cannot = page.locator("a.button[href='/recovery/']")
    assert cannot.inner_text() == words["none_usable"]
    cannot.click()
    page.wait_for_url(f"{base}/recovery/")
    assert page.inner_text("h1") == words["start_title"]


def fill_recovery_form(page, photos: dict[str, Path]) -> None:
    """A driving licence (front and back) and a selfie; each file shows its preview before anything is sent."""
    back = page.locator(".upload[data-side=back]")
    page.check("input[name=document_type][value=passport]")
    assert back.is_hidden()  # recovery.js shows only the sides the chosen document has
    page.check("input[name=document_type][value=drivers_licence]")
    assert back.is_visible()
    for side in ("front", "back", "selfie"):
        page.set_input_files(f"#file-{side}", str(photos[side]))
        preview = page.locator(f"#preview-{side}")
        preview.locator("img").wait_for()  # drawn by recovery.js from the chosen file, nothing uploaded yet
        assert preview.is_visible()
        with Image.open(photos[side]) as photo:
            assert page.evaluate(f"document.querySelector('#preview-{side} img').naturalWidth") == photo.width
        assert photos[side].name in preview.locator(".preview-name").inner_text()
        assert preview.locator(".field-warning").is_hidden()  # big enough, right type
    page.check("input[name=consent]")


def send_recovery_form(page, base: str) -> str:
    """Submit the intake form; returns the case reference the case page shows."""
    with page.expect_navigation():
        page.click("form.intake button[type=submit]")
    assert page.url == f"{base}/recovery/case"
    reference = page.inner_text("#case-reference")
    assert REFERENCE.fullmatch(reference), reference
    return reference


def open_recovery_case(page, base: str, seller: Person, photos: dict[str, Path]) -> str:
    reach_recovery_start(page, base, seller)
    fill_recovery_form(page, photos)
    return send_recovery_form(page, base)
