"""Opening a recovery case: who may, what the seller sees, what is stored and who is told."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from sqlalchemy import select

from recovery_app.models import AuditEvent, Case, SecurityEvent
from tests.helpers import outbox_messages

from .conftest import case_count, full_form, send, stored_files

REFERENCE = re.compile(r"^RC-[2-9A-HJKMNP-TV-Z]{4}-[2-9A-HJKMNP-TV-Z]{4}$")


def test_visitor_without_password_step_is_sent_to_sign_in(client):
    response = client.get("/recovery/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in")


def test_visitor_cannot_post_a_case(client, documents, nothing_changed):
    response = send(client, "/recovery/", full_form(documents))
    assert response.status_code == 302
    nothing_changed()


def test_start_page_explains_the_process_in_japanese(client, seller):
    page = client.get("/recovery/", headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert "本人確認書類" in page
    assert "12時間" in page
    assert "パスポート" in page and "運転免許証" in page and "マイナンバーカード" in page and "在留カード" in page
    assert "30日" in page  # how long documents are kept


def test_start_page_explains_the_process_in_english(client, seller):
    client.get("/language/en")
    page = client.get("/recovery/").get_data(as_text=True)
    assert "usually takes less than 12 hours" in page
    assert "Driver&#39;s licence" in page and "My Number card" in page and "Residence card" in page
    assert "deleted 30 days after the decision" in page
    assert 'src="/static/js/recovery.js"' in page
    assert "<script>" not in page and "style=" not in page  # CSP: no inline script or style


def test_seller_opens_a_case_and_sees_reference_and_due_time(client, seller, documents, app, backend):
    response = send(client, "/recovery/", full_form(documents))
    assert response.status_code == 302 and response.headers["Location"].endswith("/recovery/case")
    case = app.extensions["sqlalchemy"].session.execute(select(Case)).scalar_one()
    assert REFERENCE.match(case.reference)
    assert case.user_id == seller.id and case.status == "submitted" and case.document_type == "drivers_licence"
    assert (case.due_at - case.submitted_at).total_seconds() == 12 * 3600
    assert sorted((d.side, d.round) for d in case.documents) == [("back", 1), ("front", 1), ("selfie", 1)]
    assert len(stored_files(app)) == 3 and not any(p.suffix == ".tmp" for p in stored_files(app))
    page = client.get("/recovery/case").get_data(as_text=True)
    assert case.reference in page
    assert "審査待ち" in page
    local_due = case.due_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"{local_due.hour}:{local_due.minute:02d}（日本標準時）" in page


def test_case_submission_is_audited_and_in_the_users_security_history(client, seller, documents, db):
    # ASVS 16.2.1: who, what, when, where
    send(client, "/recovery/", full_form(documents), headers={"User-Agent": "Mozilla/5.0 (Android 14) Chrome/120"})
    case = db.session.execute(select(Case)).scalar_one()
    event = db.session.execute(select(AuditEvent).where(AuditEvent.action == "case.submitted")).scalar_one()
    assert event.actor_id == seller.id and event.subject_id == case.reference
    assert event.address == "127.0.0.1" and "Android" in event.browser
    security = db.session.execute(select(SecurityEvent).where(SecurityEvent.user_id == seller.id)).scalar_one()
    assert security.kind == "recovery_requested" and security.details == {"case": case.reference}
    assert case.opened_address == "127.0.0.1" and "Chrome" in case.opened_browser


def test_every_address_of_the_account_is_told_in_its_own_language(client, make, auth, documents, db):
    owner = make.user(locale="ja")
    colleague = make.user("seller_user", account=owner.account, locale="en")
    other_account = make.user(locale="ja")
    auth.fast_password_step(client, colleague)
    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) AppleWebKit Safari/604.1"
    send(client, "/recovery/", full_form(documents), headers={"User-Agent": iphone})
    case = db.session.execute(select(Case)).scalar_one()
    mails = {m.to: m for m in outbox_messages("email")}
    assert set(mails) == {owner.email, colleague.email}
    assert other_account.email not in mails
    english, japanese = mails[colleague.email], mails[owner.email]
    assert english.locale == "en" and "recovery requested" in english.subject
    # The requester is told how to stop it if it was not them ...
    assert "If this was not you" in english.body and case.reference in english.body
    assert "sign in as usual with your 2-step verification: that cancels the request at once" in english.body
    assert "Then change your password: http://localhost:5000/account/password" in english.body
    assert "127.0.0.1" in english.body and "Safari / iPhone" in english.body
    # The colleague's zone, named, in the day-month-year order of the English pages.
    assert re.search(r"Decision due by: \d{1,2} [A-Z][a-z]+ 20\d\d, \d\d:\d\d UTC", english.body)
    assert japanese.locale == "ja" and "心当たりがない場合" in japanese.body
    # ... the owner is told whom to warn.
    assert f"すぐに {colleague.display_name} さんに知らせてください" in japanese.body
    assert "/recovery/case" not in japanese.body
    assert "（日本標準時）" in japanese.body and colleague.email in japanese.body


def test_second_attempt_shows_the_open_case(client, seller, documents):
    send(client, "/recovery/", full_form(documents))
    again = client.get("/recovery/")
    assert again.status_code == 302 and again.headers["Location"].endswith("/recovery/case")
    posted = send(client, "/recovery/", full_form(documents))
    assert posted.status_code == 302 and posted.headers["Location"].endswith("/recovery/case")
    assert case_count() == 1
