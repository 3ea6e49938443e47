"""SQLite writers of one process take turns on a lock of the process before
asking SQLite, so a writer that waits is woken when the one before it ends,
not when SQLite's busy handler next polls. These tests are about SQLite only:
PostgreSQL has row locks and no such turn."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from recovery_app import create_app, database
from recovery_app.database import unit
from recovery_app.extensions import db

from .helpers import base_config


@pytest.fixture
def sqlite_app(tmp_path):
    app = create_app(base_config(f"sqlite:///{tmp_path / 'turns.db'}", tmp_path))
    with app.app_context():
        with unit():
            db.session.execute(text("CREATE TABLE written (who TEXT)"))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _turn(app):
    with app.app_context():
        return database._write_turn_for(db.engine.url.database)


def _in_thread(app, work) -> threading.Thread:
    def run():
        with app.app_context():
            try:
                work()
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _written(app) -> list[str]:
    with app.app_context(), unit(write=False):
        return [row.who for row in db.session.execute(text("SELECT who FROM written ORDER BY rowid"))]


def test_a_second_writer_waits_for_the_first_to_commit_and_then_writes(sqlite_app):
    inside, release, second_began = threading.Event(), threading.Event(), threading.Event()

    def first():
        with unit():
            db.session.execute(text("INSERT INTO written VALUES ('first')"))
            inside.set()
            release.wait(10)

    def second():
        with unit():
            db.session.execute(text("INSERT INTO written VALUES ('second')"))
            second_began.set()

    one = _in_thread(sqlite_app, first)
    assert inside.wait(10)
    two = _in_thread(sqlite_app, second)
    assert not second_began.wait(0.3), "the second writer began while the first held the turn"
    release.set()
    one.join(10)
    two.join(10)
    assert second_began.is_set()
    assert _written(sqlite_app) == ["first", "second"]
    assert not _turn(sqlite_app).locked()


def test_a_failed_unit_gives_the_turn_back(sqlite_app):
    with sqlite_app.app_context():
        with pytest.raises(ZeroDivisionError), unit():
            db.session.execute(text("INSERT INTO written VALUES ('lost')"))
            1 / 0  # noqa: B018 - the unit fails after writing
        assert not _turn(sqlite_app).locked()
        with unit():
            db.session.execute(text("INSERT INTO written VALUES ('kept')"))
    assert _written(sqlite_app) == ["kept"]


def test_a_connection_closed_in_a_write_gives_the_turn_back(sqlite_app):
    with sqlite_app.app_context():
        connection = db.engine.connect()
        connection.begin()
        connection.execute(text("INSERT INTO written VALUES ('dropped')"))
        assert _turn(sqlite_app).locked()
        connection.invalidate()
        connection.close()
        assert not _turn(sqlite_app).locked()
    assert _written(sqlite_app) == []


def test_readers_do_not_wait_for_the_writer(sqlite_app):
    inside, release = threading.Event(), threading.Event()

    def writer():
        with unit():
            db.session.execute(text("INSERT INTO written VALUES ('late')"))
            inside.set()
            release.wait(10)

    thread = _in_thread(sqlite_app, writer)
    assert inside.wait(10)
    try:
        assert _written(sqlite_app) == []  # read beside the open write, without its row
    finally:
        release.set()
        thread.join(10)
    assert _written(sqlite_app) == ["late"]


def test_writers_of_many_threads_all_get_their_turn(sqlite_app):
    errors: list[BaseException] = []

    def write(n):
        def work():
            try:
                for k in range(10):
                    with unit():
                        db.session.execute(text("INSERT INTO written VALUES (:who)"), {"who": f"{n}-{k}"})
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        return work

    threads = [_in_thread(sqlite_app, write(n)) for n in range(8)]
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(_written(sqlite_app)) == sorted(f"{n}-{k}" for n in range(8) for k in range(10))
    assert not _turn(sqlite_app).locked()
