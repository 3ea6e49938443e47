"""Demo cases: every state, real document images, added once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from recovery_app.demo import seed_cases
from recovery_app.documents import storage
from recovery_app.models import Case, Decision, Document


def test_demo_cases_cover_every_state_with_stored_images_and_are_added_once(app, db, now):
    import io

    from PIL import Image

    created, staged = seed_cases(60, now=now, seed=7)
    db.session.flush()
    storage.commit_staged(staged)

    assert created == 60
    statuses = dict(db.session.execute(select(Case.status, func.count()).group_by(Case.status)).all())
    assert sum(statuses.values()) == 60
    assert {"submitted", "approved", "rejected", "withdrawn", "expired"} <= set(statuses)
    oldest = db.session.execute(select(func.min(Case.submitted_at))).scalar()
    assert now - oldest <= timedelta(days=30)
    document = db.session.execute(select(Document).limit(1)).scalar_one()
    image = Image.open(io.BytesIO(storage.read(document)))
    assert image.format == "JPEG" and image.size[0] >= 800
    decided = db.session.execute(select(func.count()).where(Case.decided_by_id.is_not(None))).scalar()
    assert decided == statuses["approved"] + statuses["rejected"]
    assert db.session.execute(select(func.count()).select_from(Decision)).scalar() >= decided

    assert seed_cases(50, now=now) == (0, [])
    assert db.session.execute(select(func.count()).select_from(Case)).scalar() == 60


def test_demo_command_refuses_a_negative_number_of_cases(runner):
    result = runner.invoke(args=["demo", "--cases", "-5"])
    assert result.exit_code == 2 and "-5 is not in the range" in result.output
