"""The reviewer's case view at 1366×900 with real pre-check results: the
selfie beside the document photo, the pre-check panel beside the decision
panel, and a reused document's list kept short, each case once and linked."""

from __future__ import annotations

import random

import pytest

from .conftest import screenshot
from .journeys import WORDS, create_person, open_page, sign_in_staff

WIDE = {"viewport": {"width": 1366, "height": 900}}
MORE = {"en": "and 2 more cases, further apart", "ja": "ほかに 2 件（これらより一致度の低いもの）"}


def _store_case(user, document_type: str, documents, now):
    from recovery_app import lifecycle
    from recovery_app.documents import storage
    from recovery_app.extensions import db

    case = lifecycle.new_case(user, document_type, now=now, address="203.0.113.9", browser="Mozilla/5.0")
    for side, data, width, height in documents:
        staged = storage.stage(data)
        storage.commit_staged([staged])
        db.session.add(
            staged.row(
                case_id=case.id,
                round=1,
                side=side,
                content_type="image/jpeg",
                width=width,
                height=height,
                display_name=f"{side}.jpg",
                created_at=now,
            )
        )
    db.session.flush()
    return case


def _passport_case_sent_by_seven_others(live_app) -> str:
    """A seller's passport case, and seven other sellers' cases whose front is a
    copy of that passport; pre-checks run. Returns the first case's reference."""
    from recovery_app import demo
    from recovery_app.extensions import db
    from recovery_app.models import User
    from recovery_app.models.base import utcnow
    from recovery_app.prechecks.jobs import run_pending
    from tests.factories import Factory

    rng = random.Random(4)
    with live_app.app_context():
        make, now = Factory(live_app), utcnow()
        owner = make.user(enrolled=False, display_name="Hina Ito")
        documents = demo.case_documents("passport", ["front", "selfie"], "Hina Ito", rng)
        target = _store_case(owner, "passport", documents, now)
        front = documents[0][1]
        for n in range(7):
            other = make.user(enrolled=False, display_name=f"Copier {n}")
            copy = demo.case_documents("passport", ["front", "selfie"], other.romanised_name, rng, "reused", [front])
            _store_case(other, "passport", copy, now)
        db.session.commit()
        while run_pending(now)["claimed"]:
            pass
        reference = target.reference
        assert db.session.get(User, owner.id) is not None
        db.session.commit()
        db.session.remove()
    return reference


def _box(page, selector: str) -> dict:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box


@pytest.mark.parametrize("language", ["en", "ja"])
def test_case_view_puts_selfie_beside_photo_and_prechecks_beside_decision(live_app, live_server, new_context, language):
    reference = _passport_case_sent_by_seven_others(live_app)
    reviewer = create_person(live_app, "reviewer", locale=language, name="Review Er")
    page, errors = open_page(new_context, language, WIDE)
    sign_in_staff(page, live_server, reviewer)
    page.goto(f"{live_server}/review/case/{reference}")
    with page.expect_navigation():
        page.click(f"form[action='/review/case/{reference}/claim'] button")
    assert WORDS[language]["claimed"].format(ref=reference) in page.inner_text(".flash-success")
    page.wait_for_function(
        "() => [...document.querySelectorAll('img[data-viewer-image]')].every(i => i.complete && i.naturalWidth)"
    )

    # The selfie sits beside the passport photo, on the same row.
    front, selfie = _box(page, "figure.doc-front"), _box(page, "figure.doc-selfie")
    assert abs(front["y"] - selfie["y"]) < 2 and selfie["x"] >= front["x"] + front["width"]

    # The pre-check panel is in the column of the decision panel, right below it,
    # to the right of the documents.
    documents, decide, prechecks = (
        _box(page, ".review-documents"),
        _box(page, "section.decide"),
        _box(page, ".precheck-panel"),
    )
    assert prechecks["x"] >= documents["x"] + documents["width"]
    assert abs(prechecks["x"] - decide["x"]) < 2
    assert 0 <= prechecks["y"] - (decide["y"] + decide["height"]) < 40

    # Seven other cases hold a copy: the closest five are named once each, linked; two are counted.
    reuse_links = page.locator(".precheck-matches a")
    assert reuse_links.count() == 5
    hrefs = reuse_links.evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert len(set(hrefs)) == 5 and all(href.startswith("/review/case/RC-") for href in hrefs)
    assert MORE[language] in page.inner_text(".precheck-panel")
    # The copies came after this case was checked: the panel's verdict follows its reuse line.
    assert page.locator(".precheck-panel h2 .badge-bad").count() == 1

    height = page.evaluate("() => document.documentElement.scrollHeight")
    assert height < 4000, height  # the unbounded list once made this page 7,682 px tall
    screenshot(page, f"review-case-prechecks-{language}-1366")
    errors.check()
