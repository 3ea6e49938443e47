"""One bad file does not cost the seller every photo: the files that passed are
kept, encrypted, for this browser's session and this user, for an hour, and
shown as kept; the next try needs only the files that were wrong."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from sqlalchemy import select

from recovery_app.documents import storage
from recovery_app.models import Case, Document
from recovery_app.models.base import utcnow
from recovery_app.recovery import kept
from tests.recovery.conftest import case_count, form_for, full_form, send, stored_files

NOT_A_PICTURE = (io.BytesIO(b"just some text, not a photo at all"), "front.jpg", "image/jpeg")


def _kept_entries(client) -> dict:
    with client.session_transaction() as sess:
        return dict(sess.get(kept.SESSION_KEY) or {})


def _fail_on_front(client, documents):
    return send(client, "/recovery/", full_form(documents, front=NOT_A_PICTURE))


def test_files_that_passed_are_kept_encrypted_and_shown(app, client, seller, documents):
    response = _fail_on_front(client, documents)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="kept-back"' in page and 'id="kept-selfie"' in page and 'id="kept-front"' not in page
    assert "back.jpg" in page and 'id="error-front"' in page
    entries = _kept_entries(client)
    assert set(entries) == {"back", "selfie"} and {e["uid"] for e in entries.values()} == {seller.id}
    files = stored_files(app)
    assert len(files) == 2 and all(path.suffix == ".tmp" for path in files)
    for path in files:  # encrypted at rest: no JPEG in sight
        blob = path.read_bytes()
        assert not blob.startswith(b"\xff\xd8") and b"JFIF" not in blob and b"Exif" not in blob
    assert case_count() == 0


def test_next_try_needs_only_the_file_that_was_wrong(app, client, seller, documents, db):
    _fail_on_front(client, documents)
    response = send(client, "/recovery/", form_for("drivers_licence", front=documents["front"]))
    assert response.status_code == 302, response.get_data(as_text=True)
    case = db.session.execute(select(Case).where(Case.user_id == seller.id)).scalar_one()
    sides = sorted(db.session.execute(select(Document.side).where(Document.case_id == case.id)).scalars())
    assert sides == ["back", "front", "selfie"]
    assert _kept_entries(client) == {}
    files = stored_files(app)
    assert len(files) == 3 and all(path.suffix == ".bin" for path in files)  # the kept blobs are gone
    selfie = db.session.execute(
        select(Document).where(Document.case_id == case.id, Document.side == "selfie")
    ).scalar_one()
    assert storage.read(selfie)  # the kept picture went in whole


def test_a_new_file_replaces_the_kept_one(app, client, seller, documents, db):
    _fail_on_front(client, documents)
    other_back = documents["selfie"]  # any other good picture
    send(client, "/recovery/", form_for("drivers_licence", front=NOT_A_PICTURE, back=other_back))
    entries = _kept_entries(client)
    assert set(entries) == {"back", "selfie"}
    assert len(stored_files(app)) == 2  # the replaced back is not left behind


def test_kept_files_last_an_hour(app, client, seller, documents):
    _fail_on_front(client, documents)
    with client.session_transaction() as sess:
        entries = sess[kept.SESSION_KEY]
        for entry in entries.values():
            entry["at"] = (utcnow() - timedelta(minutes=61)).isoformat()
        sess[kept.SESSION_KEY] = entries
    response = send(client, "/recovery/", form_for("drivers_licence", front=documents["front"]))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="kept-back"' not in page and 'id="error-back"' in page and 'id="error-selfie"' in page
    assert case_count() == 0


def test_the_orphan_job_removes_kept_files_after_the_hour(app, client, seller, documents):
    _fail_on_front(client, documents)
    assert storage.remove_orphans(utcnow()) == 0
    assert storage.remove_orphans(utcnow() + timedelta(hours=1, minutes=1)) == 2
    response = send(client, "/recovery/", form_for("drivers_licence", front=documents["front"]))
    assert response.status_code == 422 and 'id="error-back"' in response.get_data(as_text=True)


def test_kept_files_belong_to_the_user_who_sent_them(app, client, seller, documents, make, auth):
    _fail_on_front(client, documents)
    entries = _kept_entries(client)
    other = make.user(locale="ja")
    auth.fast_password_step(client, other)  # a new sign-in: a new session
    with client.session_transaction() as sess:
        sess[kept.SESSION_KEY] = entries  # even if carried over, they are not the other user's
    response = send(client, "/recovery/", form_for("drivers_licence", front=documents["front"]))
    assert response.status_code == 422 and 'id="kept-back"' not in response.get_data(as_text=True)


def test_a_kept_file_that_no_longer_matches_is_not_used(app, client, seller, documents):
    _fail_on_front(client, documents)
    for path in stored_files(app):
        path.write_bytes(b"\x00" * 64)
    response = send(client, "/recovery/", form_for("drivers_licence", front=documents["front"]))
    assert response.status_code == 422 and case_count() == 0


def test_valid_refuses_malformed_or_foreign_entries():
    now = datetime(2026, 3, 2, 9, 0)
    good = {"uid": 7, "at": now.isoformat()}
    assert kept.valid({"front": good}, 7, now) == {"front": good}
    assert kept.valid({"front": good}, 8, now) == {}
    assert kept.valid({"front": {"uid": 7, "at": "yesterday"}}, 7, now) == {}
    assert kept.valid("not a dict", 7, now) == {}


def test_page_sending_with_progress_is_told_where_to_go(client, seller, documents):
    response = send(client, "/recovery/", full_form(documents), headers={"X-Upload-Progress": "1"})
    assert response.status_code == 200 and response.get_json() == {"location": "/recovery/case"}
    assert "書類を受け付けました" in client.get("/recovery/case").get_data(as_text=True)


def test_resubmission_keeps_the_files_that_passed_too(app, client, seller, documents, db, make):
    case = make.case(seller, document_type="drivers_licence")
    case.status = "needs_info"
    db.session.flush()
    response = send(
        client,
        "/recovery/case/documents",
        {"front": NOT_A_PICTURE, "back": (io.BytesIO(documents["back"]), "back.jpg", "image/jpeg")},
    )
    assert response.status_code == 422 and 'id="kept-back"' in response.get_data(as_text=True)
    response = send(
        client, "/recovery/case/documents", {"front": (io.BytesIO(documents["front"]), "front.jpg", "image/jpeg")}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    sides = sorted(db.session.execute(select(Document.side).where(Document.case_id == case.id)).scalars())
    assert sides == ["back", "front"]


def test_a_long_file_name_does_not_swell_the_session_cookie(client, seller, documents):
    long_name = "保険証の写真" * 40 + ".jpg"  # 244 characters, as a phone may name a shared file
    send(
        client,
        "/recovery/",
        full_form(documents, front=NOT_A_PICTURE, back=(io.BytesIO(documents["back"]), long_name, "image/jpeg")),
    )
    entry = _kept_entries(client)["back"]
    assert len(entry["name"]) == kept.NAME_KEPT and entry["name"].startswith("保険証の写真")
    cookie = client.get_cookie("session")
    assert cookie is not None and len(cookie.value) < 3000
