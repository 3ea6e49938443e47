"""Every page a reviewer and a manager work in, checked by axe in a real
browser: Japanese and English, at 1366×900 and 390×844, with no serious or
critical violation, and a screenshot of each under test-results/staff-axe/.

The data is what staff meet on a working day: a queue with unclaimed cases, a
case file held by a reviewer (documents and the pre-check panel), a month of
decided cases for the reports. One browser context per role, language and size.
"""

from __future__ import annotations

from datetime import timedelta

from axe_playwright_python.sync_playwright import Axe

from .conftest import SCREENSHOTS
from .journeys import BROWSER_LOCALE, PHONE, BrowserErrors, Person, create_person, fits_a_phone, sign_in_staff

DESKTOP = {"viewport": {"width": 1366, "height": 900}}
DEVICES = {"desktop": DESKTOP, "phone": PHONE}
NAMES = {"reviewer": {"ja": "審査 一郎", "en": "Oliver Reed"}, "manager": {"ja": "真野 直子", "en": "Mana Grant"}}
SERIOUS = ("serious", "critical")
AXE = Axe()
# A case file: front, back and selfie shown, the pre-check panel beside the decision.
CASE_FILE = {"img[data-viewer-image]": 3, ".precheck-panel": 1, "section.decide": 1}


def _seed_working_day(live_app, holders: list[Person], *, month_of_cases: bool) -> dict[str, str]:
    """Unclaimed cases in the queue and one case held by each of ``holders``
    (front, back, selfie), pre-checks run; with ``month_of_cases``, then 40
    demo cases over the last 30 days for the reports. Returns holder e-mail → reference."""
    from sqlalchemy import select

    from recovery_app.demo import seed_cases
    from recovery_app.documents import storage
    from recovery_app.extensions import db
    from recovery_app.models import User
    from recovery_app.models.base import utcnow
    from recovery_app.prechecks.jobs import run_pending
    from recovery_app.review import claims
    from tests.factories import Factory, ReviewFactory

    held = {}
    with live_app.app_context():
        now = utcnow()
        review = ReviewFactory(Factory(live_app), now)
        for n in range(3):  # waiting, unclaimed, submitted over the last hours
            review.case(review.seller(display_name=f"Queue Seller {n}"), submitted_at=now - timedelta(hours=n + 1))
        cases = [
            review.case(review.seller(display_name=f"Held Seller {n}"), submitted_at=now - timedelta(hours=5))
            for n in range(len(holders))
        ]
        while run_pending(now)["claimed"]:
            pass
        for holder, case in zip(holders, cases, strict=True):
            user = db.session.execute(select(User).where(User.email == holder.email)).scalar_one()
            claims.claim(case.reference, user, now=now, address="203.0.113.20", browser="Mozilla/5.0")
            held[holder.email] = case.reference
        db.session.commit()
        if month_of_cases:  # after the pre-checks: the month's open cases wait for theirs, as behind a busy checker
            _, staged = seed_cases(40, now=now, seed=11)
            db.session.commit()
            storage.commit_staged(staged)
        db.session.remove()
    return held


class Sweep:
    """One browser context (one role, language and size) going through its pages."""

    def __init__(self, new_context, role: str, language: str, device: str, *, screenshots: bool):
        self.page = new_context(BROWSER_LOCALE[language], **DEVICES[device]).new_page()
        self.screenshots = screenshots
        self.errors = BrowserErrors(self.page)
        self.role, self.language, self.device = role, language, device
        self.folder = SCREENSHOTS / "staff-axe"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.found: list[str] = []
        self.seen: list[str] = []

    def visit(self, base: str, name: str, path: str, shows: dict[str, int], *, status: int = 200) -> None:
        """Open ``path``; it answers ``status`` in the right language and shows at
        least ``shows[selector]`` of each selector; then a screenshot and axe."""
        response = self.page.goto(base + path)
        assert response is not None and response.status == status, f"{path}: {response and response.status}"
        assert self.page.locator("html").get_attribute("lang") == self.language, path
        for selector, minimum in shows.items():
            assert self.page.locator(selector).count() >= minimum, f"{path}: fewer than {minimum} {selector}"
        self.page.wait_for_function("() => [...document.images].every(i => i.complete)")
        wide = self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 1, f"{path}: the page scrolls sideways by {wide} px"  # wide things scroll in their own region
        if self.device == "phone":
            fits_a_phone(self.page, path)
        if self.screenshots:
            self.page.screenshot(
                path=str(self.folder / f"{self.role}-{name}-{self.language}-{self.device}.png"), full_page=True
            )
        for violation in AXE.run(self.page).response["violations"]:
            if violation["impact"] in SERIOUS:
                targets = [node["target"] for node in violation["nodes"]][:3]
                self.found.append(
                    f"{self.role}/{name}/{self.language}/{self.device}: {violation['id']} "
                    f"({violation['impact']}) {targets}"
                )
        self.seen.append(name)
        if status != 200:  # the browser reports the status it was meant to get
            self.errors.seen = [e for e in self.errors.seen if f"status of {status}" not in e]


def _sweep_all(live_app, live_server, new_context, backend: str, role: str, pages) -> list[str]:
    """Sign in a person of ``role`` per language and size; visit ``pages(reference)``.
    Screenshots are taken on SQLite only: the pages are the same on PostgreSQL."""
    people = {
        (language, device): create_person(live_app, role, locale=language, name=NAMES[role][language])
        for language in ("ja", "en")
        for device in DEVICES
    }
    holders = (
        list(people.values())
        if role == "reviewer"
        else [create_person(live_app, "reviewer", locale="ja", name=NAMES["reviewer"]["ja"])]
    )
    held = _seed_working_day(live_app, holders, month_of_cases=role == "manager")
    reference = held.get(holders[0].email)
    found = []
    for (language, device), person in people.items():
        sweep = Sweep(new_context, role, language, device, screenshots=backend == "sqlite")
        sign_in_staff(sweep.page, live_server, person)
        for name, path, status, shows in pages(held.get(person.email, reference)):
            sweep.visit(live_server, name, path, shows, status=status)
        assert len(sweep.seen) == len(pages(reference))
        sweep.errors.check()
        sweep.page.context.close()
        found += sweep.found
    return found


def test_every_reviewer_page_passes_axe(live_app, live_server, new_context, backend):
    def pages(reference):
        return [
            ("queue", "/review/", 200, {"tr.queue-row": 7, "tr.queue-row form[action$='/claim'] button": 3}),
            ("queue-mine", "/review/?mine=y", 200, {"tr.queue-row": 1}),
            ("case", f"/review/case/{reference}", 200, CASE_FILE),
            ("security", "/settings/security", 200, {"main h1": 1}),
            # changing the password asks for a code first
            ("password-confirm", "/account/password", 200, {"form[action^='/settings/confirm'] input[name=code]": 1}),
            ("sessions", "/account/sessions", 200, {"main h1": 1}),
            ("help", "/help", 200, {"main h2": 2}),
        ]

    found = _sweep_all(live_app, live_server, new_context, backend, "reviewer", pages)
    assert not found, "axe found serious or critical violations:\n" + "\n".join(found)


def test_every_manager_page_passes_axe(live_app, live_server, new_context, backend):
    from recovery_app.models.base import utcnow

    today = utcnow().date()
    week = f"start={(today - timedelta(days=6)).isoformat()}&end={today.isoformat()}"

    def pages(reference):
        return [
            ("queue", "/review/", 200, {"tr.queue-row": 4}),
            # held by a reviewer: the manager may reassign it
            ("case", f"/review/case/{reference}", 200, {**CASE_FILE, "form[action$='/reassign']": 1}),
            ("reports", "/reports/", 200, {"svg.chart": 3, "a[download]": 3}),
            ("reports-week", f"/reports/?{week}", 200, {"svg.chart": 3}),
            ("reports-bad-range", "/reports/?start=2026-13-01&end=yesterday", 400, {"#range-error": 1}),
            ("staff", "/staff/", 200, {"form[action='/staff/invite']": 1}),
            ("staff-users", "/staff/users?q=example.test", 200, {"li.person": 5}),
            ("security", "/settings/security", 200, {"main h1": 1}),
            ("help", "/help", 200, {"main h2": 2}),
        ]

    found = _sweep_all(live_app, live_server, new_context, backend, "manager", pages)
    assert not found, "axe found serious or critical violations:\n" + "\n".join(found)
