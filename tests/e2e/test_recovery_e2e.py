"""A seller who lost their phone opens a recovery case from their own phone's browser.

Password, then "Didn't get a code?" → "I can't use any of these", a driving
licence (front and back) and a selfie drawn with Pillow, a preview of each
before sending, consent, and the case page with its reference and due time.
In Japanese and in English.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from .conftest import screenshot
from .journeys import (
    PHONE,
    WORDS,
    create_person,
    document_photos,
    fill_recovery_form,
    open_page,
    reach_recovery_start,
    send_recovery_form,
)

SELLERS = {"ja": ("山田 花子", "さくら雑貨店"), "en": ("Emma Clarke", "Clarke Crafts Ltd")}


@pytest.mark.parametrize("language", ["ja", "en"])
def test_seller_without_phone_opens_a_case_with_documents(live_app, live_server, new_context, tmp_path, language):
    from recovery_app.extensions import db
    from recovery_app.models import Case, Document, User
    from recovery_app.recovery.services import in_zone

    name, shop = SELLERS[language]
    seller = create_person(live_app, "seller_owner", locale=language, name=name, shop=shop)
    photos = document_photos(tmp_path)
    words = WORDS[language]
    page, errors = open_page(new_context, language, PHONE)

    reach_recovery_start(page, live_server, seller)
    assert page.locator("html").get_attribute("lang") == language
    fill_recovery_form(page, photos)
    assert page.locator("input[name=consent]").is_checked()
    screenshot(page, f"recovery-start-{language}-phone")
    reference = send_recovery_form(page, live_server)

    assert words["sent"] in page.inner_text(".flash-success")
    assert page.inner_text("#case-status") == words["waiting"]
    assert words["due_by"] in page.inner_text("dl.facts")
    due_text = page.inner_text("#case-due")
    screenshot(page, f"recovery-case-{language}-phone")
    errors.check()

    with live_app.app_context():
        case = db.session.execute(select(Case).where(Case.reference == reference)).scalar_one()
        user = db.session.get(User, case.user_id)
        assert user.email == seller.email and case.status == "submitted"
        assert case.document_type == "drivers_licence"
        assert case.due_at - case.submitted_at == timedelta(hours=live_app.config["RECOVERY_SLA_HOURS"])
        # The due time the seller reads is the stored one, in their own zone and language.
        assert due_text == in_zone(case.due_at, user.time_zone, language)
        sides = db.session.execute(select(Document.side).where(Document.case_id == case.id)).scalars().all()
        assert sorted(sides) == ["back", "front", "selfie"]
        db.session.remove()
