"""Demo cases: a realistic month of recovery cases so the queue and the
reports can be seen with real volume.

Cases arrive over the last 30 days (more in Japanese daytime), and each gets a
plausible story: claimed after a while (sometimes too long a while), decided,
sent back for new documents, approved by two reviewers, withdrawn, or left to
expire. The stories run through the real lifecycle (``new_case``,
``transition``) in time order, with the SLA sweep and the expiry job run every
hour of simulated time, so flags, breaches and audit events are what the
live system would have produced. Steps after ``now`` have not happened yet:
recent cases are still open. Document images are drawn with Pillow and
stored encrypted through ``documents.storage``.

Development only; the ``demo`` command refuses production.
"""

from __future__ import annotations

import functools
import heapq
import io
import itertools
import random
import secrets
from datetime import datetime, timedelta

from flask import current_app
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import func, select

from . import lifecycle
from .auth.passwords import hash_password
from .auth.users import create_user, get_or_create_account
from .documents import storage
from .extensions import db
from .models import Case, Decision, Document, User
from .scheduler import jobs

SELLER_DOMAIN = "demo-sellers.example"
REVIEWER_NAMES = ("Reviewer One", "鈴木 一郎", "高橋 美咲", "Priya Nair", "田中 翔")
SELLER_NAMES = ("伊藤 陽菜", "渡辺 蓮", "山本 結衣", "中村 大翔", "小林 さくら", "加藤 湊", "吉田 葵",
                "山田 悠真", "佐々木 凛", "松本 陽翔", "井上 結菜", "木村 樹", "Maria Santos", "John Carter")
ACCOUNTS = ("株式会社 さくら雑貨", "青空ストア合同会社", "Kobe Outdoor KK", "みどり書房", "Tokyo Vintage Ltd.")
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
SWEEP_EVERY = timedelta(hours=1)


def demo_case_count() -> int:
    return db.session.execute(
        select(func.count()).select_from(Case).join(User, User.id == Case.user_id)
        .where(User.email.like(f"%@{SELLER_DOMAIN}"))
    ).scalar()


@functools.lru_cache(maxsize=8)
def _font(size: int):
    try:
        return ImageFont.truetype(FONT, size)
    except OSError:
        return ImageFont.load_default()


def document_image(document_type: str, side: str, name: str, rng: random.Random) -> tuple[bytes, int, int]:
    """A made-up identity document (clearly marked SPECIMEN) as a JPEG."""
    width, height = (1000, 1000) if side == "selfie" else (1000, 630)
    tint = rng.choice([(226, 236, 245), (236, 243, 228), (245, 236, 226), (238, 232, 245)])
    image = Image.new("RGB", (width, height), tint)
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((20, 20, width - 20, height - 20), radius=28, outline=(90, 100, 120), width=6)
    if side == "selfie":
        draw.ellipse((330, 150, 670, 520), fill=(200, 170, 150))
        draw.rectangle((250, 600, 750, 900), fill=(60, 90, 140))
        draw.rectangle((400, 640, 700, 830), fill=(240, 240, 240), outline=(40, 40, 40), width=3)
        draw.text((420, 700), "ID", font=_font(48), fill=(40, 40, 40))
    else:
        draw.rectangle((60, 140, 330, 500), fill=(200, 205, 215))
        draw.ellipse((120, 190, 270, 340), fill=(170, 150, 140))
        draw.text((60, 50), document_type.replace("_", " ").upper(), font=_font(44), fill=(30, 40, 60))
        lines = [f"NAME  {name}", f"NO.  {rng.randrange(10**11, 10**12)}",
                 f"VALID UNTIL  20{rng.randrange(27, 35)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
                 f"SIDE  {side.upper()}"]
        for i, line in enumerate(lines):
            draw.text((370, 170 + i * 70), line, font=_font(34), fill=(30, 30, 30))
    draw.text((width - 330, height - 110), "SPECIMEN", font=_font(56), fill=(179, 38, 30))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue(), width, height


class _Demo:
    def __init__(self, now: datetime, rng: random.Random):
        self.now = now
        self.rng = rng
        self.staged: list = []
        self.events: list = []
        self.counter = itertools.count()

    # -- people ------------------------------------------------------------
    def people(self, sellers_wanted: int) -> None:
        reviewers = list(db.session.execute(select(User).where(User.role == "reviewer")).scalars())
        for i, name in enumerate(REVIEWER_NAMES[len(reviewers):], start=len(reviewers) + 1):
            reviewers.append(create_user(email=f"reviewer{i}@recovery-desk.example", password=secrets.token_urlsafe(24),
                                         role="reviewer", now=self.now - timedelta(days=60), display_name=name,
                                         romanised_name=name, locale="ja", check_password=False))
        self.reviewers = reviewers
        accounts = [get_or_create_account(name, self.now - timedelta(days=90)) for name in ACCOUNTS]
        # Demo sellers never sign in: they share one hash of a password nobody knows
        # (hashing one per seller would take most of the time here).
        unknown = hash_password(secrets.token_urlsafe(24))
        self.sellers = []
        for i in range(sellers_wanted):
            name = SELLER_NAMES[i % len(SELLER_NAMES)]
            seller = User(email=f"seller{i + 1}@{SELLER_DOMAIN}", password_hash=unknown,
                          role="seller_owner" if i < len(accounts) else "seller_user", account=accounts[i % len(accounts)],
                          display_name=name, romanised_name=name, locale="en" if name.isascii() else "ja",
                          time_zone="UTC" if name.isascii() else "Asia/Tokyo", must_enroll_2sv=False,
                          session_epoch=0, created_at=self.now - timedelta(days=90))
            db.session.add(seller)
            self.sellers.append(seller)
        db.session.flush()

    # -- the timeline ----------------------------------------------------------
    def at(self, when: datetime, step, *args) -> None:
        if when <= self.now:
            heapq.heappush(self.events, (when, next(self.counter), step, args))

    def hours(self, low: float, high: float) -> timedelta:
        return timedelta(hours=self.rng.uniform(low, high))

    def arrival(self) -> datetime:
        """A time in the last 30 days, busier in Japanese daytime (UTC 0–12);
        one case in ten arrived in the last 14 hours and is still open."""
        if self.rng.random() < 0.1:
            return self.now - self.hours(0, 14)
        day = self.now - timedelta(days=self.rng.randrange(0, 30))
        hour = self.rng.choices(range(24), weights=[9, 10, 10, 9, 8, 7, 6, 6, 6, 7, 8, 8, 5, 3, 2, 1, 1, 1, 1, 1, 2, 4, 6, 8])[0]
        moment = day.replace(hour=hour, minute=self.rng.randrange(60), second=self.rng.randrange(60), microsecond=0)
        return moment if moment <= self.now else moment - timedelta(days=1)

    def plan(self, count: int) -> None:
        types = list(current_app.config["RECOVERY_DOCUMENT_TYPES"])
        for _ in range(count):
            seller = self.rng.choice(self.sellers)
            self.at(self.arrival(), self.open_case, seller, self.rng.choice(types))
        t = min((event[0] for event in self.events), default=self.now)
        while t < self.now:
            self.at(t, self.sweep)
            t += SWEEP_EVERY
        self.at(self.now, self.sweep)

    def run(self) -> None:
        while self.events:
            when, _, step, args = heapq.heappop(self.events)
            step(when, *args)

    # -- steps -------------------------------------------------------------------
    def sweep(self, when: datetime) -> None:
        jobs.sla_sweep(when)
        jobs.expire_needs_info(when)

    def add_documents(self, case: Case, when: datetime, round_: int) -> None:
        sides = list(current_app.config["RECOVERY_DOCUMENT_TYPES"][case.document_type])
        if current_app.config["RECOVERY_REQUIRE_SELFIE"]:
            sides.append("selfie")
        seller = db.session.get(User, case.user_id)
        for side in sides:
            data, width, height = document_image(case.document_type, side, seller.romanised_name, self.rng)
            staged = storage.stage(data)
            self.staged.append(staged)
            db.session.add(Document(case_id=case.id, round=round_, side=side, storage_key=staged.storage_key,
                                    key_id=staged.key_id, sha256=staged.sha256, size=staged.size,
                                    content_type="image/jpeg", width=width, height=height,
                                    display_name=f"{side}.jpg", created_at=when))

    def open_case(self, when: datetime, seller: User, document_type: str) -> None:
        case = lifecycle.new_case(seller, document_type, now=when, address="203.0.113." + str(self.rng.randrange(1, 250)),
                                  browser=self.rng.choice(["Mozilla/5.0 (iPhone; CPU iPhone OS 17_4) Safari/604.1",
                                                           "Mozilla/5.0 (Windows NT 10.0) Chrome/124.0 Safari/537.36",
                                                           "Mozilla/5.0 (Linux; Android 14) Chrome/124.0 Mobile"]))
        self.add_documents(case, when, 1)
        if self.rng.random() < 0.04:
            self.at(when + self.hours(0.2, 3), self.withdraw, case.id)
        self.at(when + self.claim_delay(when), self.claim, case.id, 1)

    def claim_delay(self, since: datetime) -> timedelta:
        roll = self.rng.random()
        if since > self.now - timedelta(hours=14):
            roll -= 0.2  # today's queue is busy: some cases are at risk or breached now
        if roll < 0.07:
            return self.hours(9.5, 20)  # the queue was long that day: at risk, or breached
        if roll < 0.25:
            return self.hours(4, 9)
        return self.hours(0.1, 4)

    def withdraw(self, when: datetime, case_id: int) -> None:
        case = db.session.get(Case, case_id)
        if case.status == "submitted":
            lifecycle.transition(case, "withdrawn", now=when, actor=db.session.get(User, case.user_id), action="withdrawn")

    def claim(self, when: datetime, case_id: int, round_: int) -> None:
        case = db.session.get(Case, case_id)
        if case.status != "submitted":
            return
        reviewer = self.rng.choices(self.reviewers, weights=[5, 4, 3, 2, 1][: len(self.reviewers)])[0]
        lifecycle.transition(case, "in_review", now=when, actor=reviewer, action="claimed")
        case.claimed_by_id, case.claimed_at, case.last_activity_at = reviewer.id, when, when
        case.first_claimed_at = case.first_claimed_at or when
        roll = self.rng.random()
        done = when + timedelta(minutes=self.rng.uniform(6, 75))
        if when > self.now - timedelta(minutes=45):
            return  # still being reviewed
        if roll < 0.16 and round_ == 1:
            self.at(done, self.request_info, case_id, reviewer.id)
        elif roll < 0.33:
            self.at(done, self.decide, case_id, reviewer.id, "rejected")
        elif roll < 0.45:
            self.at(done, self.first_approval, case_id, reviewer.id)
        else:
            self.at(done, self.decide, case_id, reviewer.id, "approved")

    def _decision(self, case: Case, reviewer_id: int, action: str, when: datetime, reason: str | None = None,
                  message: str | None = None) -> None:
        db.session.add(Decision(case_id=case.id, reviewer_id=reviewer_id, action=action, reason_code=reason,
                                message=message, created_at=when))

    def decide(self, when: datetime, case_id: int, reviewer_id: int, outcome: str) -> None:
        case = db.session.get(Case, case_id)
        if case.status not in ("in_review", "awaiting_second_approval"):
            return
        reviewer = db.session.get(User, reviewer_id)
        reason = None
        if outcome == "rejected":
            reason = self.rng.choices(["unreadable", "expired", "name_mismatch", "selfie_mismatch", "suspected_fraud", "other"],
                                      weights=[30, 20, 20, 15, 8, 7])[0]
        action = "confirm_approval" if case.status == "awaiting_second_approval" else ("approve" if outcome == "approved" else "reject")
        self._decision(case, reviewer_id, action, when, reason)
        lifecycle.transition(case, outcome, now=when, actor=reviewer, action=outcome)
        case.decided_by_id, case.decision, case.reason_code = reviewer_id, outcome, reason

    def first_approval(self, when: datetime, case_id: int, reviewer_id: int) -> None:
        case = db.session.get(Case, case_id)
        if case.status != "in_review":
            return
        self._decision(case, reviewer_id, "second_approval", when)
        lifecycle.transition(case, "awaiting_second_approval", now=when, actor=db.session.get(User, reviewer_id),
                             action="second_approval_requested")
        others = [r for r in self.reviewers if r.id != reviewer_id]
        self.at(when + self.hours(0.3, 5), self.decide, case_id, self.rng.choice(others).id, "approved")

    def request_info(self, when: datetime, case_id: int, reviewer_id: int) -> None:
        case = db.session.get(Case, case_id)
        if case.status != "in_review":
            return
        message = "The photo of the back is blurred. Please take it again in good light."
        self._decision(case, reviewer_id, "request_info", when, "unreadable", message)
        lifecycle.transition(case, "needs_info", now=when, actor=db.session.get(User, reviewer_id), action="info_requested")
        case.info_request_message = message
        if self.rng.random() < 0.7:
            self.at(when + self.hours(1, 60), self.resubmit, case_id)

    def resubmit(self, when: datetime, case_id: int) -> None:
        case = db.session.get(Case, case_id)
        if case.status != "needs_info":
            return
        lifecycle.transition(case, "submitted", now=when, actor=db.session.get(User, case.user_id), action="resubmitted")
        self.add_documents(case, when, 2)
        self.at(when + self.claim_delay(when), self.claim, case_id, 2)


def seed_cases(count: int, *, now: datetime, seed: int | None = None) -> tuple[int, list]:
    """Create ``count`` demo cases once. Returns how many were created (0 if
    demo cases exist already) and the staged document files: the caller
    commits, then moves the files into place with ``storage.commit_staged``
    (or removes them with ``storage.discard_staged`` if the commit failed)."""
    if demo_case_count():
        return 0, []
    demo = _Demo(now, random.Random(seed))
    demo.people(max(8, min(60, count // 6)))
    demo.plan(count)
    try:
        demo.run()
        db.session.flush()
    except Exception:
        storage.discard_staged(demo.staged)
        raise
    return count, demo.staged
