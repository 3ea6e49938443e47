"""What reviewers see: the panel partial (rendered with only ``case``), the
queue filter, the failed-check badge and the checklist suggestions."""

from datetime import timedelta
from types import SimpleNamespace

from flask import render_template_string
from flask_babel import refresh
from sqlalchemy import select

from recovery_app.documents import storage
from recovery_app.extensions import db
from recovery_app.models import Case
from recovery_app.prechecks import services
from recovery_app.prechecks.jobs import run_pending
from recovery_app.prechecks.services import panel

from . import images
from .conftest import passport_photo

INCLUDE = '{% include "prechecks/_panel.html" ignore missing %}'


def _render(app, case, language="en"):
    with app.test_request_context("/", headers={"Accept-Language": language}):
        refresh()  # the test's app context outlives one request: drop the cached language
        return render_template_string(INCLUDE, case=case, file=SimpleNamespace(prechecks=panel(case)))


def test_panel_says_running_until_the_job_has_run(app, make, seller, now):
    case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(case, images.jpeg(images.photo_of(images.card(41), seed=41)))
    html = _render(app, case)
    assert "Pre-checks running" in html and "precheck-line" not in html
    assert "プレチェック実行中" in _render(app, case, "ja")


def test_panel_shows_each_check_with_verdict_value_and_why(app, make, seller, now):
    case = make.case(seller("Taro Yamada"), submitted_at=now)
    make.document(case, passport_photo())
    make.document(case, images.jpeg(images.blurred(images.selfie(3), 4)), side="selfie")
    run_pending(now)
    html = _render(app, case)
    assert html.count('class="precheck-line"') == 7  # front: quality, face, MRZ, reuse; selfie: quality, face, reuse
    for text in (
        "Image quality",
        "Passport machine-readable zone",
        "Reused document",
        "Face",
        "YAMADA",
        "TARO",
        "JPN",
        "1990-01-01",
        "2032-01-01",
        "Blurred",
        "1600 × 1200",
        "A blurred, glared or dark image hides edits",
        "A check failed",
        'href="/static/css/prechecks.css"',
    ):
        assert text in html, text
    japanese = _render(app, case, "ja")
    assert "画像の品質" in japanese and "ぼやけています" in japanese and "不合格" in japanese


def test_panel_shows_the_error_when_the_checks_could_not_run(app, make, seller, now):
    app.config["RECOVERY_PRECHECK_MAX_ATTEMPTS"] = 1
    case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    document = make.document(case, images.jpeg(images.card(42)))
    storage._path_for(document.storage_key).unlink()
    run_pending(now)
    html = _render(app, case)
    assert "Pre-checks could not run" in html and "FileNotFoundError" in html


def test_panel_of_a_case_without_documents_says_so(app, make, seller, now):
    case = make.case(seller(), submitted_at=now, status="approved")
    assert "No pre-checks for this case." in _render(app, case)


def test_queue_filter_and_failed_badge(app, make, seller, now):
    clean = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(clean, images.jpeg(images.photo_of(images.card(43), seed=43)))
    soft = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(soft, images.jpeg(images.blurred(images.photo_of(images.card(44), seed=44), 2.2)))
    failed = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(failed, images.jpeg(images.with_glare(images.photo_of(images.card(45), seed=45))))
    unchecked = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    run_pending(now)

    flagged = db.session.execute(select(Case.id).where(services.flagged_filter()).order_by(Case.id)).scalars().all()
    assert flagged == [soft.id, failed.id]
    badged = db.session.execute(select(Case.id).where(services.failed_filter())).scalars().all()
    assert badged == [failed.id]
    assert services.verdicts_for([clean.id, soft.id, failed.id, unchecked.id]) == {
        clean.id: "pass",
        soft.id: "review",
        failed.id: "fail",
    }
    assert services.verdicts_for([]) == {}


def test_checklist_suggestions_follow_the_checks(app, make, seller, now):
    good = make.case(seller("Yamada Taro"), submitted_at=now)
    make.document(good, passport_photo())
    make.document(good, images.jpeg(images.selfie(5)), side="selfie")
    bad = make.case(seller("Hanako Suzuki"), submitted_at=now)
    make.document(bad, passport_photo(seed=6, number="TK7654321", expiry="250101"))
    make.document(bad, images.jpeg(images.with_noise(images.blank((1200, 1600)), 2)), side="selfie")
    assert services.checklist_suggestions(good) == {}  # not run yet: nothing suggested
    run_pending(now)
    assert services.checklist_suggestions(good) == {
        "photo_clear": True,
        "type_matches": True,
        "not_expired": True,
        "name_matches": True,
    }
    assert services.checklist_suggestions(bad) == {
        "photo_clear": True,
        "type_matches": True,
        "not_expired": False,
        "name_matches": False,
        "selfie_matches": False,
    }


def test_pre_checks_never_change_status_or_claim(app, make, seller, now):
    reviewer = make.user(role="reviewer")
    case = make.case(seller(), submitted_at=now, document_type="drivers_licence", status="in_review")
    case.claimed_by_id = reviewer.id
    make.document(case, images.jpeg(images.blurred(images.card(46), 5)))
    run_pending(now + timedelta(minutes=1))
    db.session.refresh(case)
    assert (case.status, case.claimed_by_id, case.decision) == ("in_review", reviewer.id, None)
    assert services.panel(case).verdict == "fail"


def test_a_resubmission_that_passes_clears_the_old_rounds_flag_and_badge(app, make, seller, now):
    case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(case, images.jpeg(images.with_glare(images.photo_of(images.card(47), seed=47))))
    run_pending(now)
    assert services.verdicts_for([case.id]) == {case.id: "fail"}
    make.document(case, images.jpeg(images.photo_of(images.card(48), seed=48)), round=2, now=now + timedelta(hours=1))
    assert db.session.execute(select(Case.id).where(services.failed_filter())).scalars().all() == []
    run_pending(now + timedelta(hours=1))

    assert services.panel(case).verdict == "pass"
    assert db.session.execute(select(Case.id).where(services.flagged_filter())).scalars().all() == []
    assert db.session.execute(select(Case.id).where(services.failed_filter())).scalars().all() == []
    assert services.verdicts_for([case.id]) == {case.id: "pass"}


def test_checks_that_could_not_run_on_an_old_round_no_longer_flag_the_case(app, make, seller, now):
    app.config["RECOVERY_PRECHECK_MAX_ATTEMPTS"] = 1
    case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    other = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    for lost in (make.document(case, images.jpeg(images.card(49))), make.document(other, images.jpeg(images.card(50)))):
        storage._path_for(lost.storage_key).unlink()
    run_pending(now)
    flagged = select(Case.id).where(services.flagged_filter()).order_by(Case.id)
    assert db.session.execute(flagged).scalars().all() == [case.id, other.id]
    make.document(case, images.jpeg(images.photo_of(images.card(48), seed=48)), round=2, now=now + timedelta(hours=1))
    run_pending(now + timedelta(hours=1))

    assert services.panel(case).state == "done"
    # Each case is judged on its own newest round: the other case's only round still could not run.
    assert db.session.execute(flagged).scalars().all() == [other.id]
