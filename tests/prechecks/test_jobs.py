"""The pre-check job: discovery, claim, one transaction per case, idempotence,
retries with the error kept, and the case left alone."""

import io
from datetime import timedelta
from types import SimpleNamespace

from flask import render_template_string
from flask_babel import refresh
from pypdf import PdfWriter
from sqlalchemy import func, select, update

from recovery_app.documents import storage
from recovery_app.extensions import db
from recovery_app.models import AuditEvent, Case
from recovery_app.models.prechecks import DocumentHash, PrecheckResult, PrecheckRun
from recovery_app.prechecks import services
from recovery_app.prechecks.jobs import run_pending
from recovery_app.prechecks.services import panel

from . import images
from .conftest import passport_photo


def _snapshot():
    results = db.session.execute(
        select(
            PrecheckResult.document_id,
            PrecheckResult.check,
            PrecheckResult.verdict,
            PrecheckResult.measured,
            PrecheckResult.created_at,
        ).order_by(PrecheckResult.id)
    ).all()
    runs = db.session.execute(
        select(
            PrecheckRun.id, PrecheckRun.status, PrecheckRun.attempts, PrecheckRun.verdict, PrecheckRun.finished_at
        ).order_by(PrecheckRun.id)
    ).all()
    hashes = db.session.execute(select(func.count()).select_from(DocumentHash)).scalar_one()
    audits = db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    return results, runs, hashes, audits


def test_passport_case_gets_every_check_and_the_second_run_changes_nothing(make, seller, now):
    case = make.case(seller("Taro Yamada"), submitted_at=now)
    make.document(case, passport_photo())
    make.document(case, images.jpeg(images.selfie(2)), side="selfie")

    first = run_pending(now)
    assert first == {"discovered": 1, "claimed": 1, "done": 1, "retried": 0, "failed": 0, "scrubbed": 0}
    results = {(r.check, r.document_id): r for r in db.session.execute(select(PrecheckResult)).scalars()}
    assert sorted({check for check, _ in results}) == ["face", "mrz", "quality", "reuse"]
    assert all(r.verdict == "pass" for r in results.values()), {k: (r.verdict, r.reasons) for k, r in results.items()}
    mrz_result = next(r for (check, _), r in results.items() if check == "mrz")
    assert mrz_result.measured["surname"] == "YAMADA"
    assert set(mrz_result.versions) == {"opencv", "imagehash", "mrz", "tesseract"}
    run = db.session.execute(select(PrecheckRun)).scalar_one()
    assert (run.status, run.verdict, run.attempts) == ("done", "pass", 1)
    assert case.status == "submitted"

    before = _snapshot()
    second = run_pending(now + timedelta(minutes=5))
    assert second == {"discovered": 0, "claimed": 0, "done": 0, "retried": 0, "failed": 0, "scrubbed": 0}
    assert _snapshot() == before


def test_wrong_check_digit_fails_the_mrz_check(make, seller, now):
    case = make.case(seller("Taro Yamada"), submitted_at=now)
    make.document(case, passport_photo(broken_check_digit=True))
    run_pending(now)
    result = db.session.execute(select(PrecheckResult).where(PrecheckResult.check == "mrz")).scalar_one()
    assert result.verdict == "fail" and result.reasons == ["check_digit"]
    assert "document number hash" in result.measured["failed_check_digits"]
    assert case.status == "submitted"  # pre-checks never decide


def test_expired_passport_fails_relative_to_submission(make, seller, now):
    case = make.case(seller("Taro Yamada"), submitted_at=now)  # 2026-03-02
    make.document(case, passport_photo(expiry="260301"))
    run_pending(now + timedelta(days=400))
    result = db.session.execute(select(PrecheckResult).where(PrecheckResult.check == "mrz")).scalar_one()
    assert result.verdict == "fail" and result.reasons == ["expired"]
    assert result.measured["expiry_date"] == "2026-03-01"


def test_passport_expiring_after_submission_is_not_expired(make, seller, now):
    case = make.case(seller("Taro Yamada"), submitted_at=now)
    make.document(case, passport_photo(expiry="260303"))
    run_pending(now + timedelta(days=400))  # expired by the time the job runs, not when submitted
    result = db.session.execute(select(PrecheckResult).where(PrecheckResult.check == "mrz")).scalar_one()
    assert result.verdict == "pass"


def test_name_mismatch_asks_to_look_closely(make, seller, now):
    case = make.case(seller("Hanako Suzuki"), submitted_at=now)
    make.document(case, passport_photo())
    run_pending(now)
    result = db.session.execute(select(PrecheckResult).where(PrecheckResult.check == "mrz")).scalar_one()
    assert result.verdict == "review" and result.reasons == ["name_mismatch"]


def test_selfie_without_a_face_asks_to_look_closely(make, seller, now):
    case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(case, images.jpeg(images.photo_of(images.card(5), seed=5)))
    make.document(case, images.jpeg(images.with_noise(images.blank((1200, 1600)), 1)), side="selfie")
    run_pending(now)
    faces = {
        r.document_id: r
        for r in db.session.execute(select(PrecheckResult).where(PrecheckResult.check == "face")).scalars()
    }
    verdicts = sorted((r.verdict, tuple(r.reasons)) for r in faces.values())
    assert verdicts == [("pass", ()), ("review", ("no_face",))]
    assert not db.session.execute(select(PrecheckResult).where(PrecheckResult.check == "mrz")).first()


def test_a_check_that_raises_is_retried_with_the_error_kept_and_the_case_workable(make, seller, now, app):
    case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    good = make.document(case, images.jpeg(images.photo_of(images.card(6), seed=6)))
    lost = make.document(case, images.jpeg(images.photo_of(images.card(8), seed=8)), side="back")
    blob = storage._path_for(lost.storage_key)
    kept = blob.read_bytes()
    blob.unlink()

    outcome = run_pending(now)
    assert outcome["retried"] == 1 and outcome["done"] == 0
    run = db.session.execute(select(PrecheckRun)).scalar_one()
    assert run.status == "pending" and run.attempts == 1
    assert run.last_error.startswith("FileNotFoundError")
    assert run.next_try_at == now + timedelta(minutes=app.config["RECOVERY_PRECHECK_RETRY_MINUTES"])
    # The whole case's checks were rolled back together: no half-written results.
    assert db.session.execute(select(func.count()).select_from(PrecheckResult)).scalar_one() == 0
    assert case.status == "submitted" and case.claimed_by_id is None
    view = services.panel(case)
    assert view.state == "running" and "FileNotFoundError" in view.error

    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        refresh()
        html = render_template_string(
            '{% include "prechecks/_panel.html" %}', case=case, file=SimpleNamespace(prechecks=panel(case))
        )
    assert "Pre-checks running" in html and "will be retried. Attempts so far: 1." in html

    assert run_pending(now + timedelta(minutes=1))["claimed"] == 0  # not due yet
    blob.write_bytes(kept)
    assert run_pending(now + timedelta(minutes=6))["done"] == 1
    db.session.refresh(run)
    assert (run.status, run.last_error, run.attempts) == ("done", None, 2)
    assert {r.document_id for r in db.session.execute(select(PrecheckResult)).scalars()} == {good.id, lost.id}


def test_checks_that_keep_failing_are_given_up_and_flagged(make, seller, now, app):
    app.config["RECOVERY_PRECHECK_MAX_ATTEMPTS"] = 2
    case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    lost = make.document(case, images.jpeg(images.card(9)))
    storage._path_for(lost.storage_key).unlink()
    assert run_pending(now)["retried"] == 1
    assert run_pending(now + timedelta(hours=1))["failed"] == 1
    assert run_pending(now + timedelta(days=1))["claimed"] == 0
    view = services.panel(case)
    assert view.state == "failed" and view.attempts == 2

    assert db.session.execute(select(Case.id).where(services.flagged_filter())).scalars().all() == [case.id]
    assert case.status == "submitted"


def test_undecodable_document_is_recorded_not_crashing_the_batch(make, seller, now):
    broken = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(broken, b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    fine = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(fine, images.jpeg(images.photo_of(images.card(10), seed=10)))
    outcome = run_pending(now)
    assert outcome["claimed"] == 2 and outcome["done"] == 1 and outcome["retried"] == 1
    runs = {r.case_id: r for r in db.session.execute(select(PrecheckRun)).scalars()}
    assert runs[fine.id].status == "done"
    assert "could not be decoded" in runs[broken.id].last_error


def test_closed_cases_and_purged_documents_are_not_checked(make, seller, now):
    closed = make.case(seller(), submitted_at=now, document_type="drivers_licence", status="approved")
    make.document(closed, images.jpeg(images.card(11)))
    purged_case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    purged = make.document(purged_case, images.jpeg(images.card(12)))
    purged.purged_at = now
    db.session.flush()
    assert run_pending(now)["discovered"] == 0


def test_new_round_of_documents_gets_a_new_run(make, seller, now):
    case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(case, images.jpeg(images.blurred(images.photo_of(images.card(13), seed=13), 4)))
    run_pending(now)
    assert services.panel(case).verdict == "fail"
    make.document(case, images.jpeg(images.photo_of(images.card(13), seed=13)), round=2)
    assert run_pending(now + timedelta(hours=1))["done"] == 1
    view = services.panel(case)
    assert view.verdict == "pass" and {line.check for line in view.lines} == {"quality", "face", "reuse"}


def test_pdf_scan_is_checked_from_its_embedded_image(make, seller, now):

    case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    out = io.BytesIO()
    images.photo_of(images.card(14), seed=14).save(out, "PDF", resolution=150)
    make.document(case, out.getvalue(), content_type="application/pdf")
    run_pending(now)
    quality = db.session.execute(select(PrecheckResult).where(PrecheckResult.check == "quality")).scalar_one()
    assert quality.verdict == "pass" and quality.measured["width"] == 1600


def test_pdf_without_an_image_asks_to_look_closely(make, seller, now):

    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(case, out.getvalue(), content_type="application/pdf")
    run_pending(now)
    result = db.session.execute(select(PrecheckResult)).scalar_one()
    assert (result.check, result.verdict, result.reasons) == ("quality", "review", ["no_image"])


def test_mrz_details_are_removed_once_retention_purged_the_document(app, make, seller, now):

    case = make.case(seller("Taro Yamada"), submitted_at=now)
    front = make.document(case, passport_photo(expiry="250101"))
    run_pending(now)
    storage.purge(front)
    front.purged_at = now + timedelta(days=30)
    case.status = "rejected"
    db.session.flush()

    assert run_pending(now + timedelta(days=30))["scrubbed"] == 1
    result = db.session.execute(select(PrecheckResult).where(PrecheckResult.check == "mrz")).scalar_one()
    assert result.measured == {} and result.scrubbed_at == now + timedelta(days=30)
    assert (result.verdict, result.reasons) == ("fail", ["expired"])  # the verdict stays
    assert db.session.execute(select(DocumentHash.phash)).scalar_one()  # and so does the hash
    assert run_pending(now + timedelta(days=31))["scrubbed"] == 0
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        refresh()
        html = render_template_string(
            '{% include "prechecks/_panel.html" %}', case=case, file=SimpleNamespace(prechecks=panel(case))
        )
    assert "Removed with the documents" in html and "YAMADA" not in html


def test_workers_claim_different_cases_and_run_every_one(make, seller, now):
    from recovery_app.prechecks import jobs

    cases = [make.case(seller(), submitted_at=now, document_type="drivers_licence") for _ in range(3)]
    for n, case in enumerate(cases):
        make.document(case, images.jpeg(images.photo_of(images.card(60 + n), seed=60 + n)))
    jobs._discover(now)
    first, second = jobs._claim(now, "worker-a", 1), jobs._claim(now, "worker-b", 1)
    assert len(first) == len(second) == 1 and first != second
    db.session.commit()

    counts = jobs.work(lambda: now, once=True)
    assert counts["claimed"] == 1 and counts["done"] == 1  # the two others are held by their workers
    runs = db.session.execute(select(PrecheckRun.status, PrecheckRun.claim_token).order_by(PrecheckRun.id)).all()
    assert sorted(status for status, _ in runs) == ["done", "running", "running"]

    # A worker that died leaves its lease; once it runs out, another worker finishes the case.
    later = now + timedelta(minutes=16)
    assert jobs.work(lambda: later, once=True)["done"] == 2
    assert {status for (status,) in db.session.execute(select(PrecheckRun.status))} == {"done"}


def test_a_worker_whose_claim_was_taken_over_stores_nothing(make, seller, now):
    from recovery_app.prechecks import jobs

    case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(case, images.jpeg(images.photo_of(images.card(70), seed=70)))
    jobs._discover(now)
    (run_id,) = jobs._claim(now, "slow-worker", 1)
    db.session.execute(update(PrecheckRun).values(claim_token="new-owner"))
    assert jobs._run_one(run_id, "slow-worker", now) == "lost"
    assert db.session.execute(select(func.count()).select_from(PrecheckResult)).scalar_one() == 0


def test_the_worker_refuses_a_pause_that_is_not_a_usable_number_of_seconds(app):
    runner = app.test_cli_runner()
    for value in ("-3", "0", "nan", "inf", "99999", "soon"):
        result = runner.invoke(args=["prechecks", "work", "--once", "--idle-seconds", value])
        assert result.exit_code == 2 and "Invalid value for '--idle-seconds'" in result.output, (value, result.output)
    assert runner.invoke(args=["prechecks", "work", "--once", "--idle-seconds", "0.5", "--quiet"]).exit_code == 0


def test_a_worker_that_fails_after_its_claim_was_taken_over_leaves_the_run_alone(make, seller, now, monkeypatch):
    """A worker whose lease ran out fails (its OCR hung and timed out, say)
    after another worker took the run over and finished it: the finished run
    stays done, with its results, instead of going back to pending."""
    from recovery_app.prechecks import jobs, services

    case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(case, images.jpeg(images.photo_of(images.card(71), seed=71)))
    jobs._discover(now)
    (run_id,) = jobs._claim(now, "slow-worker", 1)
    db.session.commit()
    later = now + timedelta(minutes=16)
    assert jobs.work(lambda: later, once=True)["done"] == 1  # the lease ran out: another worker did it
    results = db.session.execute(select(func.count()).select_from(PrecheckResult)).scalar_one()
    assert results > 0

    def hung(*_args):
        raise TimeoutError("tesseract hung")

    monkeypatch.setattr(services, "examine", hung)
    assert jobs._run_one(run_id, "slow-worker", now) == "lost"
    run = db.session.get(PrecheckRun, run_id)
    db.session.refresh(run)
    assert (run.status, run.last_error, run.claim_token) == ("done", None, None)
    assert db.session.execute(select(func.count()).select_from(PrecheckResult)).scalar_one() == results
