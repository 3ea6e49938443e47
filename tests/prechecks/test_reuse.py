"""Reused documents: perceptual hashes, banded lookup, and the four-eyes flag
on both cases when two users send the same document."""

import random

from sqlalchemy import select

from recovery_app.extensions import db
from recovery_app.models import AuditEvent
from recovery_app.models.prechecks import DocumentHash, DocumentMatch, PrecheckResult
from recovery_app.prechecks import reuse, services
from recovery_app.prechecks.jobs import run_pending

from . import images


def _licence(seed: int) -> bytes:
    return images.jpeg(images.photo_of(images.card(seed), seed=seed))


def _reuse_result(document):
    return db.session.execute(
        select(PrecheckResult).where(PrecheckResult.document_id == document.id, PrecheckResult.check == "reuse")
    ).scalar_one()


def test_bands_share_one_exactly_when_fewer_than_sixteen_bits_differ():
    rng = random.Random(5)
    for _ in range(200):
        original = rng.getrandbits(256)
        flipped = original
        for bit in rng.sample(range(256), 15):
            flipped ^= 1 << bit
        a, b = f"{original:064x}", f"{flipped:064x}"
        assert reuse.distance(a, b) == 15
        assert any(x == y for x, y in zip(reuse.bands(a), reuse.bands(b), strict=True))


def test_bands_spread_neighbouring_bits_over_different_bands():
    assert reuse.bands(f"{1:064x}") == [1] + [0] * 15
    assert reuse.bands(f"{2:064x}") == [0, 1] + [0] * 14
    assert reuse.bands(f"{1 << 16:064x}") == [2] + [0] * 15


def test_same_document_by_two_users_flags_both_cases(make, seller, now):
    data = _licence(21)
    first = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    first.risk_reasons = ["password_changed"]
    first_doc = make.document(first, data)
    run_pending(now)
    assert _reuse_result(first_doc).verdict == "pass" and first.high_risk is False

    second = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    second_doc = make.document(second, data)
    run_pending(now)

    for case, document, other in ((first, first_doc, second), (second, second_doc, first)):
        db.session.refresh(case)
        result = _reuse_result(document)
        assert result.verdict == "fail" and result.reasons == ["reused"]
        assert result.measured["matches"] == [{"case_id": other.id, "distance": 0}]
        assert case.high_risk is True
        assert case.status == "submitted"
        line = next(line for line in services.panel(case).lines if line.check == "reuse")
        assert line.matches[0]["reference"] == other.reference and line.matches[0]["status"] == "submitted"
    assert first.risk_reasons == ["password_changed", services.REUSED]  # existing reasons kept
    assert second.risk_reasons == [services.REUSED]
    events = (
        db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "precheck.document_reused").order_by(AuditEvent.seq)
        )
        .scalars()
        .all()
    )
    assert sorted(e.subject_id for e in events) == sorted([str(first.id), str(second.id)])
    assert {e.details["matched_case"] for e in events} == {first.reference, second.reference}

    # Running again finds the same match and adds nothing.
    second_again = make.case(second.user, submitted_at=now, document_type="drivers_licence")
    make.document(second_again, _licence(22))
    run_pending(now)
    assert len(db.session.execute(select(DocumentMatch)).scalars().all()) == 2
    assert len(db.session.execute(select(AuditEvent).where(AuditEvent.action == "precheck.document_reused")).all()) == 2


def test_seventy_percent_jpeg_recompressed_copy_is_flagged(make, seller, now):
    data = _licence(23)
    original = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(original, data)
    copy_case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    copy_doc = make.document(copy_case, images.scaled_copy(data, 0.7, 70))
    run_pending(now)
    result = _reuse_result(copy_doc)
    assert result.verdict == "fail"
    assert result.measured["matches"][0]["case_id"] == original.id
    assert result.measured["matches"][0]["distance"] <= 4


def test_slightly_cropped_copy_is_flagged(make, seller, now, app):
    data = _licence(24)
    original = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(original, data)
    copy_case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    copy_doc = make.document(copy_case, images.cropped_copy(data, 0.003))
    run_pending(now)
    result = _reuse_result(copy_doc)
    assert result.verdict == "fail"
    assert result.measured["matches"][0]["distance"] <= app.config["RECOVERY_PRECHECK_REUSE_MAX_DISTANCE"]


def test_two_different_documents_of_one_type_are_not_flagged(make, seller, now):
    cases = [make.case(seller(), submitted_at=now, document_type="drivers_licence") for _ in range(2)]
    documents = [make.document(case, _licence(31 + n)) for n, case in enumerate(cases)]
    run_pending(now)
    hashes = db.session.execute(select(DocumentHash.phash).order_by(DocumentHash.id)).scalars().all()
    assert reuse.distance(*hashes) > 24
    for case, document in zip(cases, documents, strict=True):
        assert _reuse_result(document).verdict == "pass"
        assert case.high_risk is False


def test_same_user_sending_the_same_document_again_is_not_reuse(make, seller, now):
    user = seller()
    data = _licence(25)
    for _ in range(2):
        case = make.case(user, submitted_at=now, document_type="drivers_licence")
        document = make.document(case, data)
    run_pending(now)
    assert _reuse_result(document).verdict == "pass"
    assert db.session.execute(select(DocumentMatch)).first() is None


def test_hashes_stay_after_the_document_file_is_purged(make, seller, now):
    from recovery_app.documents import storage

    data = _licence(26)
    old = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    old_doc = make.document(old, data)
    run_pending(now)
    storage.purge(old_doc)
    old_doc.purged_at = now
    old.status = "approved"
    db.session.flush()
    new = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    new_doc = make.document(new, data)
    run_pending(now)
    result = _reuse_result(new_doc)
    assert result.verdict == "fail" and result.measured["matches"][0]["case_id"] == old.id
    line = next(line for line in services.panel(new).lines if line.check == "reuse")
    assert line.matches[0]["status"] == "approved"


def test_lookup_reads_only_the_covering_band_indexes(app, db, backend):
    from sqlalchemy import text

    from recovery_app.prechecks import reuse

    query = reuse.candidate_query("5a" * 32, other_than_user_id=1)
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    if backend == "sqlite":
        plan = [str(row[-1]) for row in db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
        searches = [step for step in plan if step.startswith(("SEARCH", "SCAN"))]
        assert searches == [
            f"SEARCH document_hashes USING COVERING INDEX ix_document_hashes_band{i}_covering (band{i}=?)"
            for i in range(16)
        ]
    else:
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        # For a band's few rows the planner may prefer a bitmap scan; with it off, each
        # band must still be answered from its covering index without the table.
        db.session.execute(text("SET LOCAL enable_bitmapscan = off"))
        plan = " ".join(row[0] for row in db.session.execute(text(f"EXPLAIN {compiled}")))
        assert "Seq Scan" not in plan
        for i in range(16):
            assert f"Index Only Scan using ix_document_hashes_band{i}_covering" in plan, plan


def test_reuse_line_names_each_case_once_the_closest_five_with_a_count_and_links(app, make, seller, now):
    from .test_panel import _render

    data = _licence(31)
    copies = [data, images.scaled_copy(data, 0.8, 70), images.scaled_copy(data, 0.6, 60)]
    target = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    target_doc = make.document(target, data)
    others = []
    for n in range(7):  # seven other sellers sent it; the first sent it twice in one case (front and back)
        case = make.case(seller(), submitted_at=now, document_type="drivers_licence")
        make.document(case, copies[n % len(copies)])
        if n == 0:
            make.document(case, images.scaled_copy(data, 0.9, 80), side="back")
        others.append(case)
    run_pending(now)
    run_pending(now)

    stored = _reuse_result(target_doc).measured
    named = [item["case_id"] for item in stored["matches"]]
    assert len(named) == 5 and len(set(named)) == 5 and stored["more_cases"] == 2
    distances = [item["distance"] for item in stored["matches"]]
    assert distances == sorted(distances)
    line = next(line for line in services.panel(target).lines if line.check == "reuse")
    assert [m["case_id"] for m in line.matches] == named and line.more_matches == 2

    html = _render(app, target)
    for match in line.matches:
        assert f'href="/review/case/{match["reference"]}"' in html
    assert html.count("Same document as case") == 5
    assert "and 2 more cases, further apart" in html


def test_reuse_line_of_an_older_result_is_deduplicated_when_shown(make, seller, now):
    target = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    document = make.document(target, _licence(33))
    others = [make.case(seller(), submitted_at=now, document_type="drivers_licence") for _ in range(7)]
    run_pending(now)
    result = _reuse_result(document)
    # The shape stored before: one entry per matched document, unsorted, no limit.
    result.measured = {
        "hash_bits": 256,
        "matches": [
            {"case_id": case.id, "distance": distance}
            for case, distance in [
                (others[0], 9),
                (others[0], 3),
                *[(case, 10 + n) for n, case in enumerate(others[1:])],
            ]
        ],
    }
    db.session.flush()
    line = next(line for line in services.panel(target).lines if line.check == "reuse")
    assert [(m["case_id"], m["distance"]) for m in line.matches] == [
        (others[0].id, 3),
        (others[1].id, 10),
        (others[2].id, 11),
        (others[3].id, 12),
        (others[4].id, 13),
    ]
    assert line.more_matches == 2


def test_panel_verdict_turns_to_fail_when_a_later_case_copies_the_document(make, seller, now):
    data = _licence(35)
    first = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(first, data)
    run_pending(now)
    assert services.panel(first).verdict == "pass"
    later = make.case(seller(), submitted_at=now, document_type="drivers_licence")
    make.document(later, images.scaled_copy(data, 0.8, 75))
    run_pending(now)
    assert services.panel(first).verdict == "fail" and services.panel(later).verdict == "fail"
