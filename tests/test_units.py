"""core_execute: a Core statement on the unit's connection, in the unit's transaction;
update_row: one loaded row's plain values written the same way."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from recovery_app.database import core_execute, update_row
from recovery_app.models import Account, User
from recovery_app.models.base import utcnow
from tests.helpers import statements_of


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


def test_update_row_writes_one_update_and_the_object_holds_the_values(app, db, make):
    user = make.user()
    later = utcnow() + timedelta(minutes=5)
    read = []

    def write_then_read():
        update_row(user, failed_code_count=3, code_locked_until=later)
        read.append((user.failed_code_count, user.code_locked_until, user in db.session.dirty))
        db.session.flush()

    # statements_of expires everything first: the UPDATE finds its row by the
    # key the object was loaded with, without a SELECT to read it back.
    assert [s.split()[0] for s in statements_of(write_then_read)] == ["UPDATE"]
    assert read == [(3, later, False)]  # held as saved, nothing left for the flush
    db.session.expire_all()
    row = db.session.execute(select(User.failed_code_count, User.code_locked_until).where(User.id == user.id)).one()
    assert tuple(row) == (3, later)


def test_update_row_touches_only_its_row_and_flushes_pending_changes_first(app, db, make):
    user, other = make.user(), make.user()
    user.display_name = "Set before"  # pending on the object: flushed, not lost
    update_row(user, consecutive_failures=2)
    db.session.expire_all()
    assert (user.display_name, user.consecutive_failures) == ("Set before", 2)
    assert other.consecutive_failures == 0
