"""core_execute: a Core statement on the unit's connection, in the unit's transaction."""

from __future__ import annotations

from sqlalchemy import select, update

from recovery_app.database import core_execute
from recovery_app.models import Account
from recovery_app.models.base import utcnow


def test_what_the_unit_added_is_flushed_before_the_statement_runs(app, db):
    db.session.add(Account(name="Sato Goods", created_at=utcnow()))  # pending: not yet in the database
    renamed = core_execute(
        update(Account).where(Account.name == "Sato Goods").values(name="Sato Goods Ltd").returning(Account.id)
    ).all()
    assert len(renamed) == 1
    db.session.expire_all()
    assert db.session.execute(select(Account.name).where(Account.id == renamed[0].id)).scalar_one() == "Sato Goods Ltd"


def test_its_write_is_part_of_the_unit_and_goes_when_the_unit_rolls_back(app, db):
    db.session.add(Account(name="Kato Crafts", created_at=utcnow()))
    db.session.flush()
    savepoint = db.session.begin_nested()
    core_execute(update(Account).where(Account.name == "Kato Crafts").values(name="renamed"))
    savepoint.rollback()
    assert db.session.execute(select(Account.name).where(Account.name.like("Kato%"))).scalars().all() == ["Kato Crafts"]
