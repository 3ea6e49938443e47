"""Documents are served only to the holder of the claim or a manager, audited, never cached."""

import pytest
from sqlalchemy import select

from recovery_app.documents import storage
from recovery_app.extensions import db
from recovery_app.models import AuditEvent
from recovery_app.review import claims
from tests.factories import jpeg_bytes, pdf_bytes, png_bytes


@pytest.fixture
def held(make, review, now):
    reviewer = make.user("reviewer", locale="en")
    case = review.case(documents=(("front", "image/png"), ("back", "application/pdf"), ("selfie", "image/jpeg")))
    claims.claim(case.reference, reviewer, now=now)
    db.session.commit()
    return reviewer, case


def test_holder_gets_each_document_decrypted_with_safe_headers(held, auth):
    # ASVS 5.3.1, 5.4.2: never a static path; sanitised inline disposition.
    reviewer, case = held
    client = auth.client_for(reviewer)
    expected = {
        "front": (png_bytes(), "image/png", "png"),
        "back": (pdf_bytes(), "application/pdf", "pdf"),
        "selfie": (jpeg_bytes(), "image/jpeg", "jpg"),
    }
    for document in case.documents:
        response = client.get(f"/review/case/{case.reference}/documents/{document.id}")
        body, mimetype, extension = expected[document.side]
        assert response.status_code == 200
        assert response.mimetype == mimetype
        assert response.data[:4] == body[:4] and len(response.data) == document.size
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Disposition"] == (
            f'inline; filename="{case.reference}-{document.side}-1.{extension}"'
        )
        assert response.headers["Content-Security-Policy"].startswith("sandbox")


def test_every_document_view_is_audited_without_content(held, auth):
    # ASVS 16.2.1
    reviewer, case = held
    document = case.documents[0]
    auth.client_for(reviewer).get(f"/review/case/{case.reference}/documents/{document.id}")
    event = db.session.execute(select(AuditEvent).where(AuditEvent.action == "document.viewed")).scalar_one()
    assert (event.actor_id, event.subject_id) == (reviewer.id, case.reference)
    assert event.details == {"document_id": document.id, "side": "front", "round": 1, "sha256": document.sha256}


def test_manager_may_see_documents_without_holding_the_case(held, make, auth):
    _, case = held
    response = auth.client_for(make.user("manager")).get(
        f"/review/case/{case.reference}/documents/{case.documents[0].id}"
    )
    assert response.status_code == 200


def test_reviewer_without_the_claim_and_seller_get_404(held, make, auth):
    _, case = held
    url = f"/review/case/{case.reference}/documents/{case.documents[0].id}"
    assert auth.client_for(make.user("reviewer")).get(url).status_code == 404
    assert auth.client_for(case.user).get(url).status_code == 404
    assert db.session.execute(select(AuditEvent).where(AuditEvent.action == "document.viewed")).first() is None


def test_document_of_another_case_or_unknown_id_is_404(held, review, auth):
    reviewer, case = held
    other = review.case()
    client = auth.client_for(reviewer)
    assert client.get(f"/review/case/{case.reference}/documents/{other.documents[0].id}").status_code == 404
    assert client.get(f"/review/case/{case.reference}/documents/99999999").status_code == 404
    assert client.get(f"/review/case/{case.reference}/documents/abc").status_code == 404
    assert client.get(f"/review/case/RC-XXXX-XXXX/documents/{case.documents[0].id}").status_code == 404


def test_purged_document_shows_when_it_was_purged_and_is_not_served(held, auth, now):
    reviewer, case = held
    document = case.documents[0]
    storage.purge(document)
    document.purged_at = now
    db.session.commit()
    client = auth.client_for(reviewer)
    assert client.get(f"/review/case/{case.reference}/documents/{document.id}").status_code == 404
    page = client.get(f"/review/case/{case.reference}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Purged on" in page and "2026" in page


def test_tampered_blob_is_refused_with_a_clear_page(held, auth):
    reviewer, case = held
    document = case.documents[0]
    path = storage._path_for(document.storage_key)
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    response = auth.client_for(reviewer).get(
        f"/review/case/{case.reference}/documents/{document.id}", headers={"Accept-Language": "en"}
    )
    assert response.status_code == 500
    assert "failed its integrity check" in response.get_data(as_text=True)
    assert db.session.execute(select(AuditEvent).where(AuditEvent.action == "document.viewed")).first() is None


def test_case_view_shows_viewer_for_images_and_sandboxed_frame_for_pdf(held, auth):
    reviewer, case = held
    page = auth.client_for(reviewer).get(f"/review/case/{case.reference}").get_data(as_text=True)
    assert page.count("data-viewer-image") == 2
    assert '<iframe class="doc-pdf" sandbox src=' in page
    assert "<script>" not in page and "style=" not in page and "onclick" not in page
