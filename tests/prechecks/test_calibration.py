"""The thresholds' rule on the demo's own documents (phone photos and scans):
at most one clean case in five is flagged, and every seeded bad document is.
bench/precheck.py measures the same on 100 clean cases."""

from sqlalchemy import select

from recovery_app import demo
from recovery_app.models import Case
from recovery_app.prechecks import services
from recovery_app.prechecks.jobs import run_pending


def test_clean_demo_cases_are_rarely_flagged_and_every_seeded_bad_document_is(app, make, seller, now):
    samples = demo.sample_cases(12, 1, seed=5)
    made = []
    for sample in samples:
        case = make.case(seller(sample["romanised_name"]), submitted_at=now, document_type=sample["document_type"])
        for side, data, _, _ in sample["documents"]:
            make.document(case, data, side=side)
        made.append(case)
    while run_pending(now)["claimed"]:
        pass

    flagged = set(db_ids(services.flagged_filter()))
    copied = {made[sample["copies"]].id for sample in samples if sample["copies"] is not None}
    clean = [
        case.id for case, sample in zip(made, samples, strict=True) if sample["flaw"] is None and case.id not in copied
    ]
    bad = {case.id: sample["flaw"] for case, sample in zip(made, samples, strict=True) if sample["flaw"]}
    assert set(bad.values()) == set(demo.FLAWS)
    assert {flaw for case_id, flaw in bad.items() if case_id not in flagged} == set()
    assert copied <= flagged  # the case whose document was copied is flagged with the copy
    assert len(flagged & set(clean)) <= 0.2 * len(clean), (len(flagged & set(clean)), len(clean))


def db_ids(condition):
    from recovery_app.extensions import db

    return db.session.execute(select(Case.id).where(condition)).scalars()
