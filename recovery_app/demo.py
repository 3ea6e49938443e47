"""Demo cases: a realistic month of recovery cases so the queue and the
reports can be seen with real volume.

Cases arrive over the last 30 days (more in Japanese daytime), and each gets a
plausible story: claimed after a while (sometimes too long a while), decided,
sent back for new documents, approved by two reviewers, withdrawn, or left to
expire. The stories run through the real lifecycle (``new_case``,
``transition``) in time order, with the SLA sweep and the expiry job run every
hour of simulated time, so flags, breaches and audit events are what the
live system would have produced. Steps after ``now`` have not happened yet:
recent cases are still open. Document images are generated specimens
(``prechecks.specimens``) captured as sellers capture them: hand-held phone
photos (angle, uneven light, slight blur, JPEG) and flatbed scans. About one
case in nine carries a seeded bad document (blurred, glared, dark, expired,
a wrong check digit, another seller's document, a selfie without a face), the
things the pre-checks exist to flag. They are stored encrypted through
``documents.storage``.

Development only; the ``demo`` command refuses production.
"""

from __future__ import annotations

import heapq
import io
import itertools
import random
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from . import lifecycle
from .auth.passwords import hash_password
from .auth.users import create_user, get_or_create_account
from .documents import storage
from .extensions import db
from .models import Case, Decision, User
from .prechecks import specimens
from .scheduler import jobs

SELLER_DOMAIN = "demo-sellers.example"
REVIEWER_NAMES = ("Reviewer One", "鈴木 一郎", "高橋 美咲", "Priya Nair", "田中 翔")
# (display name, romanised name as on the passport: given names, then surname)
SELLER_NAMES = (
    ("伊藤 陽菜", "Hina Ito"),
    ("渡辺 蓮", "Ren Watanabe"),
    ("山本 結衣", "Yui Yamamoto"),
    ("中村 大翔", "Hiroto Nakamura"),
    ("小林 さくら", "Sakura Kobayashi"),
    ("加藤 湊", "Minato Kato"),
    ("吉田 葵", "Aoi Yoshida"),
    ("山田 悠真", "Yuma Yamada"),
    ("佐々木 凛", "Rin Sasaki"),
    ("松本 陽翔", "Haruto Matsumoto"),
    ("井上 結菜", "Yuna Inoue"),
    ("木村 樹", "Itsuki Kimura"),
    ("Maria Santos", "Maria Santos"),
    ("John Carter", "John Carter"),
)
# Seeded bad documents: one case in nine gets one of these, each something a pre-check must flag.
FLAWS = ("blurred", "glare", "dark", "expired", "check_digit", "reused", "no_face")
FLAW_SHARE = 1 / 9
ACCOUNTS = ("株式会社 さくら雑貨", "青空ストア合同会社", "Kobe Outdoor KK", "みどり書房", "Tokyo Vintage Ltd.")
SWEEP_EVERY = timedelta(hours=1)


def demo_case_count() -> int:
    return db.session.execute(
        select(func.count())
        .select_from(Case)
        .join(User, User.id == Case.user_id)
        .where(User.email.like(f"%@{SELLER_DOMAIN}"))
    ).scalar()


def document_image(
    document_type: str, side: str, romanised_name: str, rng: random.Random, flaw: str | None = None
) -> tuple[bytes, int, int]:
    """A generated document (or selfie) for ``side``, photographed by phone or
    scanned, as JPEG bytes. ``flaw`` spoils it in one of the ways of FLAWS
    ("reused" is made by the caller, from another seller's document)."""
    seed = rng.randrange(10**9)
    if side == "selfie":
        image = specimens.blank((1200, 1600), (170, 165, 160)) if flaw == "no_face" else specimens.phone_selfie(seed)
        image = specimens.with_noise(image, seed) if flaw == "no_face" else image
    else:
        if document_type == "passport" and side == "front":
            words = romanised_name.upper().split()
            birth = f"{rng.randrange(60, 100)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
            expiry = "250101" if flaw == "expired" else f"{rng.randrange(28, 36)}{rng.randrange(1, 13):02d}01"
            lines = specimens.mrz_lines(
                surname=words[-1],
                given_names=" ".join(words[:-1]),
                number=f"T{rng.choice('KRSZ')}{rng.randrange(10**6, 10**7)}",
                birth=birth,
                sex=rng.choice("MF"),
                expiry=expiry,
            )
            if flaw == "check_digit":
                lines = specimens.break_check_digit(lines)
            page = specimens.passport_page(lines, seed=seed)
        else:
            page = specimens.card(seed) if side == "front" else specimens.card_back(seed)
        image = specimens.scan(page, seed=seed) if rng.random() < 0.3 else specimens.phone_photo(page, seed=seed)
    if flaw == "blurred":
        image = specimens.blurred(image, rng.uniform(4, 7))
    elif flaw == "glare":
        image = specimens.with_glare(image, rng.uniform(0.06, 0.14), seed)
    elif flaw == "dark":
        image = specimens.darkened(image, rng.uniform(0.12, 0.2))
    return specimens.capture_jpeg(image, seed), image.width, image.height


def case_documents(
    document_type: str,
    sides: list[str],
    romanised_name: str,
    rng: random.Random,
    flaw: str | None = None,
    others: list[bytes] = (),
) -> list[tuple[str, bytes, int, int]]:
    """(side, JPEG bytes, width, height) for each side of one case. With
    ``flaw`` "reused", the front is a shrunk, re-saved copy of one of
    ``others`` (document fronts of other sellers)."""
    documents = []
    for side in sides:
        if flaw == "reused" and side == "front":
            data = specimens.scaled_copy(rng.choice(others), rng.uniform(0.7, 0.95), 80)
            width, height = specimens.Image.open(io.BytesIO(data)).size
        else:
            spoil = flaw if (flaw == "no_face") == (side == "selfie") else None
            data, width, height = document_image(document_type, side, romanised_name, rng, spoil)
        documents.append((side, data, width, height))
    return documents


class _Demo:
    def __init__(self, now: datetime, rng: random.Random):
        self.now = now
        self.rng = rng
        self.staged: list = []
        self.fronts: list[tuple[int, bytes]] = []  # clean document fronts, for seeded reuse
        self.flaws: dict[int, str | None] = {}  # the seeded flaw of each case's newest round
        self.events: list = []
        self.counter = itertools.count()

    # -- people ------------------------------------------------------------
    def people(self, sellers_wanted: int) -> None:
        reviewers = list(db.session.execute(select(User).where(User.role == "reviewer")).scalars())
        for i, name in enumerate(REVIEWER_NAMES[len(reviewers) :], start=len(reviewers) + 1):
            reviewers.append(
                create_user(
                    email=f"reviewer{i}@recovery-desk.example",
                    password=secrets.token_urlsafe(24),
                    role="reviewer",
                    now=self.now - timedelta(days=60),
                    display_name=name,
                    romanised_name=name,
                    locale="ja",
                    check_password=False,
                )
            )
        self.reviewers = reviewers
        accounts = [get_or_create_account(name, self.now - timedelta(days=90)) for name in ACCOUNTS]
        # Demo sellers never sign in: they share one hash of a password nobody knows
        # (hashing one per seller would take most of the time here).
        unknown = hash_password(secrets.token_urlsafe(24))
        self.sellers = []
        for i in range(sellers_wanted):
            name, romanised = SELLER_NAMES[i % len(SELLER_NAMES)]
            seller = User(
                email=f"seller{i + 1}@{SELLER_DOMAIN}",
                password_hash=unknown,
                role="seller_owner" if i < len(accounts) else "seller_user",
                account=accounts[i % len(accounts)],
                display_name=name,
                romanised_name=romanised,
                locale="en" if name.isascii() else "ja",
                time_zone="UTC" if name.isascii() else "Asia/Tokyo",
                must_enroll_2sv=False,
                session_epoch=0,
                created_at=self.now - timedelta(days=90),
            )
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
        hour = self.rng.choices(
            range(24), weights=[9, 10, 10, 9, 8, 7, 6, 6, 6, 7, 8, 8, 5, 3, 2, 1, 1, 1, 1, 1, 2, 4, 6, 8]
        )[0]
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
        others = [(user_id, data) for user_id, data in self.fronts if user_id != seller.id]
        possible = [
            flaw
            for flaw in FLAWS
            if (flaw not in ("expired", "check_digit") or case.document_type == "passport")
            and (flaw != "reused" or others)
            and (flaw != "no_face" or "selfie" in sides)
        ]
        flaw = self.rng.choice(possible) if self.rng.random() < FLAW_SHARE else None
        for side, data, width, height in case_documents(
            case.document_type, sides, seller.romanised_name, self.rng, flaw, [data for _, data in others]
        ):
            if side == "front" and flaw is None:
                self.fronts = self.fronts[-29:] + [(seller.id, data)]
            staged = storage.stage(data)
            self.staged.append(staged)
            db.session.add(
                staged.row(
                    case_id=case.id,
                    round=round_,
                    side=side,
                    content_type="image/jpeg",
                    width=width,
                    height=height,
                    display_name=f"{side}.jpg",
                    created_at=when,
                )
            )
        self.flaws[case.id] = flaw

    def open_case(self, when: datetime, seller: User, document_type: str) -> None:
        case = lifecycle.new_case(
            seller,
            document_type,
            now=when,
            address="203.0.113." + str(self.rng.randrange(1, 250)),
            browser=self.rng.choice(
                [
                    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4) Safari/604.1",
                    "Mozilla/5.0 (Windows NT 10.0) Chrome/124.0 Safari/537.36",
                    "Mozilla/5.0 (Linux; Android 14) Chrome/124.0 Mobile",
                ]
            ),
        )
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
            lifecycle.transition(
                case, "withdrawn", now=when, actor=db.session.get(User, case.user_id), action="withdrawn"
            )

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

    def _decision(
        self,
        case: Case,
        reviewer_id: int,
        action: str,
        when: datetime,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        db.session.add(
            Decision(
                case_id=case.id,
                reviewer_id=reviewer_id,
                action=action,
                reason_code=reason,
                message=message,
                created_at=when,
            )
        )

    def decide(self, when: datetime, case_id: int, reviewer_id: int, outcome: str) -> None:
        case = db.session.get(Case, case_id)
        if case.status not in ("in_review", "awaiting_second_approval"):
            return
        reviewer = db.session.get(User, reviewer_id)
        reason = None
        if outcome == "rejected":
            reason = self.rng.choices(
                ["unreadable", "expired", "name_mismatch", "selfie_mismatch", "suspected_fraud", "other"],
                weights=[30, 20, 20, 15, 8, 7],
            )[0]
        action = (
            "confirm_approval"
            if case.status == "awaiting_second_approval"
            else ("approve" if outcome == "approved" else "reject")
        )
        self._decision(case, reviewer_id, action, when, reason)
        lifecycle.transition(case, outcome, now=when, actor=reviewer, action=outcome)
        case.decided_by_id, case.decision, case.reason_code = reviewer_id, outcome, reason

    def first_approval(self, when: datetime, case_id: int, reviewer_id: int) -> None:
        case = db.session.get(Case, case_id)
        if case.status != "in_review":
            return
        self._decision(case, reviewer_id, "second_approval", when)
        lifecycle.transition(
            case,
            "awaiting_second_approval",
            now=when,
            actor=db.session.get(User, reviewer_id),
            action="second_approval_requested",
        )
        others = [r for r in self.reviewers if r.id != reviewer_id]
        self.at(when + self.hours(0.3, 5), self.decide, case_id, self.rng.choice(others).id, "approved")

    def request_info(self, when: datetime, case_id: int, reviewer_id: int) -> None:
        case = db.session.get(Case, case_id)
        if case.status != "in_review":
            return
        message = "The photo of the back is blurred. Please take it again in good light."
        self._decision(case, reviewer_id, "request_info", when, "unreadable", message)
        lifecycle.transition(
            case, "needs_info", now=when, actor=db.session.get(User, reviewer_id), action="info_requested"
        )
        case.info_request_message = message
        if self.rng.random() < 0.7:
            self.at(when + self.hours(1, 60), self.resubmit, case_id)

    def resubmit(self, when: datetime, case_id: int) -> None:
        case = db.session.get(Case, case_id)
        if case.status != "needs_info":
            return
        lifecycle.transition(
            case, "submitted", now=when, actor=db.session.get(User, case.user_id), action="resubmitted"
        )
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


def sample_cases(clean: int, per_flaw: int, *, seed: int = 11, document_types=None) -> list[dict]:
    """Documents for ``clean`` demo cases and ``per_flaw`` cases of each seeded
    flaw, without a database: what bench/precheck.py and the tests measure the
    pre-checks' flag rates on. Each entry: romanised name, document type,
    flaw (None when clean), the documents, and for a reused copy the index of
    the clean case it copies (that case is flagged too, rightly)."""
    rng = random.Random(seed)
    types = document_types or current_app.config["RECOVERY_DOCUMENT_TYPES"]
    cases: list[dict] = []
    for n, flaw in enumerate([None] * clean + [flaw for flaw in FLAWS for _ in range(per_flaw)]):
        _, romanised = SELLER_NAMES[n % len(SELLER_NAMES)]
        document_type = "passport" if flaw in ("expired", "check_digit") else rng.choice(sorted(types))
        sides = list(types[document_type]) + ["selfie"]
        source = rng.randrange(clean) if flaw == "reused" else None
        others = [cases[source]["documents"][0][1]] if source is not None else []
        documents = case_documents(document_type, sides, romanised, rng, flaw, others)
        cases.append(
            {
                "romanised_name": romanised,
                "document_type": document_type,
                "flaw": flaw,
                "copies": source,
                "documents": documents,
            }
        )
    return cases
