"""What the pre-checks add to the reviewers' pages: the queue's "pre-check flags"
filter, the failed-check badge, the checklist suggestions and the reused-document
risk reason. Results come from running the real pre-check job on generated documents."""

import re
from datetime import timedelta

from recovery_app.extensions import db
from recovery_app.prechecks import services as precheck_services
from recovery_app.prechecks.jobs import run_pending
from recovery_app.review import casefile, claims, queue, risk
from tests.factories import ALL_CHECKS
from tests.prechecks import images
from tests.prechecks.conftest import passport_photo


def _licence_case(review, seller, picture, now):
    """A driving-licence case with one photographed front page (no passport OCR: quick)."""
    case = review.case(seller, documents=(), document_type="drivers_licence", submitted_at=now)
    review.document(case, "front", "image/jpeg", content=images.jpeg(picture))
    db.session.commit()
    return case


def _three_outcomes(review, now):
    """Cases whose checks pass, ask to look closely, and fail; and one without documents."""
    clean = _licence_case(review, review.seller(), images.photo_of(images.card(43), seed=43), now)
    soft = _licence_case(review, review.seller(), images.blurred(images.photo_of(images.card(44), seed=44), 2.2), now)
    failed = _licence_case(review, review.seller(), images.with_glare(images.photo_of(images.card(45), seed=45)), now)
    unchecked = review.case(review.seller(), documents=(), document_type="drivers_licence", submitted_at=now)
    run_pending(now)
    db.session.commit()
    return clean, soft, failed, unchecked


def _rows(html: str) -> dict[str, str]:
    """Each queue row's HTML, by the case reference it shows."""
    rows = {}
    for row in re.findall(r'<tr class="queue-row.*?</tr>', html, flags=re.DOTALL):
        reference = re.search(r'class="mono case-link"[^>]*>([^<]+)<', row).group(1)
        rows[reference] = row
    return rows


def test_precheck_flags_filter_shows_only_flagged_cases(make, review, auth, now):
    clean, soft, failed, unchecked = _three_outcomes(review, now)
    client = auth.client_for(make.user("reviewer", locale="en"))
    everything = client.get("/review/").get_data(as_text=True)
    assert set(_rows(everything)) == {clean.reference, soft.reference, failed.reference, unchecked.reference}
    flagged = client.get("/review/?flagged=1").get_data(as_text=True)
    assert set(_rows(flagged)) == {soft.reference, failed.reference}
    assert 'name="flagged"' in flagged and "Pre-check flags" in flagged
    assert re.search(r'<input[^>]*checked[^>]*name="flagged"|<input[^>]*name="flagged"[^>]*checked', flagged)


def test_flag_filter_is_kept_in_the_next_page_link(make, review, now):
    assert queue.QueueFilters(flagged=True, mine=True).args() == {"mine": "1", "flagged": "1"}
    assert queue.QueueFilters().args() == {}


def test_precheck_flags_filter_is_labelled_in_japanese(make, auth, now):
    make.case(submitted_at=now)
    html = auth.client_for(make.user("reviewer", locale="ja")).get("/review/").get_data(as_text=True)
    assert "プレチェックの指摘あり" in html


def test_failed_check_badge_is_on_the_failed_case_row_only(make, review, auth, now):
    clean, soft, failed, unchecked = _three_outcomes(review, now)
    english = _rows(auth.client_for(make.user("reviewer", locale="en")).get("/review/").get_data(as_text=True))
    assert "Pre-check failed" in english[failed.reference]
    for other in (clean, soft, unchecked):
        assert "Pre-check failed" not in english[other.reference], other.reference
    japanese = _rows(auth.client_for(make.user("reviewer", locale="ja")).get("/review/").get_data(as_text=True))
    assert "プレチェック不合格" in japanese[failed.reference]
    assert "プレチェック不合格" not in japanese[soft.reference]


def test_resubmitted_case_whose_new_round_passes_is_neither_flagged_nor_badged(make, review, auth, now):
    failed_first = _licence_case(
        review, review.seller(), images.with_glare(images.photo_of(images.card(51), seed=51)), now
    )
    run_pending(now)
    db.session.commit()
    later = now + timedelta(hours=2)
    review.document(
        failed_first, "front", "image/jpeg", round=2, content=images.jpeg(images.photo_of(images.card(48), seed=48))
    )  # passes every check
    db.session.commit()
    run_pending(later)
    db.session.commit()
    assert precheck_services.panel(failed_first).verdict == "pass"
    client = auth.client_for(make.user("reviewer", locale="en"))
    everything = _rows(client.get("/review/").get_data(as_text=True))
    assert failed_first.reference in everything
    assert "Pre-check failed" not in everything[failed_first.reference]
    assert failed_first.reference not in _rows(client.get("/review/?flagged=1").get_data(as_text=True))


def _claimed_passport_case(make, review, now, *, romanised_name: str, selfie: bytes):
    seller = review.seller()
    seller.romanised_name = romanised_name
    case = review.case(seller, documents=(), document_type="passport", submitted_at=now)
    review.document(case, "front", "image/jpeg", content=passport_photo())
    review.document(case, "selfie", "image/jpeg", content=selfie)
    db.session.commit()
    run_pending(now)
    db.session.commit()
    reviewer = make.user("reviewer", locale="en")
    claims.claim(case.reference, reviewer, now=now)
    db.session.commit()
    return case, reviewer


def _checklist(html: str) -> str:
    return re.search(r'<fieldset class="checklist.*?</fieldset>', html, flags=re.DOTALL).group(0)


def _suggestion(checklist: str, key: str) -> str | None:
    found = re.search(rf'data-suggestion="{key}">([^<]+)<', checklist)
    return found.group(1) if found else None


def test_case_view_shows_suggestions_beside_the_checklist_without_ticking_it(make, review, auth, now):
    blank_selfie = images.jpeg(images.with_noise(images.blank((1200, 1600)), 2))  # no face in it
    case, reviewer = _claimed_passport_case(make, review, now, romanised_name="Taro Yamada", selfie=blank_selfie)
    client = auth.client_for(reviewer)
    checklist = _checklist(client.get(f"/review/case/{case.reference}").get_data(as_text=True))
    for key in ("type_matches", "not_expired", "name_matches", "photo_clear"):
        assert _suggestion(checklist, key) == "Pre-check suggests: yes", key
    assert _suggestion(checklist, "selfie_matches") == "Pre-check suggests: look closely"
    assert "checked" not in checklist  # a suggestion never ticks a box
    assert "check each item yourself" in checklist

    reviewer.locale = "ja"
    db.session.commit()
    japanese = _checklist(client.get(f"/review/case/{case.reference}").get_data(as_text=True))
    assert _suggestion(japanese, "name_matches") == "プレチェックの提案: 問題なし"
    assert _suggestion(japanese, "selfie_matches") == "プレチェックの提案: 要確認"


def test_approval_still_needs_the_reviewers_own_ticks_after_the_checks_passed(make, review, auth, now):
    case, reviewer = _claimed_passport_case(
        make, review, now, romanised_name="Taro Yamada", selfie=images.jpeg(images.selfie(5))
    )
    assert set(casefile.open_case_file(case.reference, reviewer, now=now).suggestions) >= {
        "type_matches",
        "not_expired",
        "name_matches",
        "photo_clear",
    }
    client = auth.client_for(reviewer)
    suggested_yes = ["type_matches", "not_expired", "name_matches", "photo_clear"]
    for ticked in ([], suggested_yes):
        response = client.post(f"/review/case/{case.reference}/approve", data={"checklist": ticked})
        assert response.status_code == 400  # sent back with the checklist marked
        db.session.refresh(case)
        assert case.status == "in_review", ticked
    client.post(f"/review/case/{case.reference}/approve", data={"checklist": ALL_CHECKS})
    db.session.refresh(case)
    assert case.status == "approved"


def test_case_without_results_shows_no_suggestion(make, review, auth, now):
    case = review.case(submitted_at=now)
    reviewer = make.user("reviewer", locale="en")
    claims.claim(case.reference, reviewer, now=now)
    db.session.commit()
    checklist = _checklist(auth.client_for(reviewer).get(f"/review/case/{case.reference}").get_data(as_text=True))
    assert "data-suggestion" not in checklist and "Pre-check suggest" not in checklist


def test_reused_document_reason_is_shown_in_words(make, review, auth, now):
    page = images.jpeg(images.photo_of(images.card(47), seed=47))
    first = review.case(review.seller(), documents=(), document_type="drivers_licence", submitted_at=now)
    review.document(first, "front", "image/jpeg", content=page)
    second = review.case(review.seller(), documents=(), document_type="drivers_licence", submitted_at=now)
    review.document(second, "front", "image/jpeg", content=images.scaled_copy(page))
    db.session.commit()
    run_pending(now)
    db.session.commit()
    for case in (first, second):
        db.session.refresh(case)
        assert case.high_risk and risk.DOCUMENT_REUSED in case.risk_reasons
    english = auth.client_for(make.user("reviewer", locale="en")).get(f"/review/case/{second.reference}")
    reasons = re.search(r'<ul class="risk-reasons">.*?</ul>', english.get_data(as_text=True), flags=re.DOTALL).group(0)
    assert "A document matches a document of another user&#39;s case" in reasons
    assert "document_reused" not in reasons
    japanese = auth.client_for(make.user("reviewer", locale="ja")).get(f"/review/case/{first.reference}")
    assert "別のユーザーの案件の書類と一致する書類があります" in japanese.get_data(as_text=True)


def test_every_risk_reason_has_a_label(english):
    for code in (risk.PASSWORD_CHANGED, risk.EMAIL_CHANGED, risk.EARLIER_FRAUD, risk.DOCUMENT_REUSED):
        assert risk.reason_label(code) != code
    assert risk.reason_label("document_reused") == "A document matches a document of another user's case"
