"""Units of work: one transaction per request, job and CLI command.

Services and operations only flush; the edge of the unit commits once, or
rolls the whole unit back when it fails:

* a request: ``init_app`` commits after the view returned a response (a form
  error included, so a counted failure is kept) and rolls back on an exception;
* a job or a CLI command: ``with unit():``.

SQLite lets one writer at a time, and a transaction that began by reading
cannot become a writer once somebody else has written: SQLite then fails at
once with "database is locked" instead of waiting. So a unit that writes
begins ``BEGIN IMMEDIATE`` and waits its turn (``busy_timeout``), and a unit
that only reads begins a plain deferred ``BEGIN`` (WAL lets it run beside the
writer). Writers of one process wait for each other on a lock of their own
before asking SQLite (``_WriteTurnConnection``): SQLite's busy handler polls
with sleeps of up to 100 ms, so a thread that only just missed the lock would
sleep long after it was free; the lock wakes the next writer the moment the
previous one commits. Other processes still meet at ``busy_timeout``.

A request is a writer when its method is not safe (POST…); a GET that must
write (an audited view) says so with ``@writes``; a POST that does slow
work between reading and writing (a password hash, cleaning uploaded files)
says ``@reads_first`` and calls ``begin_write()`` when the slow part is done.
Slow work that needs no database at all (argon2 hashes) runs inside
``slow_work_then_write()`` instead: the unit holds no transaction and no
connection while it lasts.

A unit that began as a reader and then writes is a bug on SQLite; it is
reported as a ``ReadUnitWrote`` warning (an error in the tests).
"""

from __future__ import annotations

import sqlite3
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache

from flask import Flask, g, request
from sqlalchemy import bindparam, event, func, inspect, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from .extensions import db

READ, WRITE = "read", "write"
NO_DATABASE = "no database"  # inside slow_work_then_write(): beginning a transaction is a bug
BUSY_TIMEOUT_SECONDS = 30
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")

# What the unit running in this thread (or task) is: outside any unit (a shell,
# a script, a test calling a service) it is a writer, the safe assumption.
_mode: ContextVar[str] = ContextVar("recovery_unit_mode", default=WRITE)


class ReadUnitWrote(RuntimeWarning):
    """A unit that began as a reader tried to write."""


_write_turns: dict[str, threading.Lock] = {}
_write_turns_guard = threading.Lock()


def _write_turn_for(database: str) -> threading.Lock:
    with _write_turns_guard:
        return _write_turns.setdefault(database, threading.Lock())


class _WriteTurnConnection(sqlite3.Connection):
    """An SQLite connection whose write transactions first take the turn that
    every connection of this process to the same file shares; the turn is
    given back as soon as the transaction ends (commit, rollback or close)."""

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        self.write_turn = _write_turn_for(str(database))
        self.holds_turn = False

    def take_write_turn(self) -> None:
        if not self.write_turn.acquire(timeout=BUSY_TIMEOUT_SECONDS):
            raise sqlite3.OperationalError("database is locked")
        self.holds_turn = True

    def give_back_turn(self) -> None:
        if self.holds_turn:
            self.holds_turn = False
            self.write_turn.release()

    def commit(self):
        try:
            super().commit()
        finally:
            self.give_back_turn()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self.give_back_turn()

    def close(self):
        try:
            super().close()
        finally:
            self.give_back_turn()


def enable_sqlite_pragmas(engine) -> None:
    """WAL, foreign keys and a busy timeout for SQLite; the write turn shared in
    this process; and let SQLAlchemy, not the sqlite3 module, decide when
    transactions begin, so that SAVEPOINTs, ``BEGIN`` and ``BEGIN IMMEDIATE``
    behave as described above."""

    @event.listens_for(engine, "do_connect")
    def _connection_class(_dialect, _record, _args, kwargs):
        kwargs.setdefault("factory", _WriteTurnConnection)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        if _mode.get() != WRITE:
            connection.exec_driver_sql("BEGIN")
            return
        dbapi_connection = connection.connection.driver_connection
        take_turn = getattr(dbapi_connection, "take_write_turn", None)
        if take_turn is not None:
            take_turn()
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            if take_turn is not None:
                dbapi_connection.give_back_turn()
            raise


def refuse_transactions_in_slow_work(engine) -> None:
    """Beginning a transaction inside ``slow_work_then_write()`` raises, before
    any BEGIN is sent: a lazy load there would take the write lock (or hold a
    snapshot and a connection) for the length of the slow work. Registered
    before the SQLite listeners, so it runs first."""

    @event.listens_for(engine, "begin")
    def _refuse(_connection):
        if _mode.get() == NO_DATABASE:
            raise RuntimeError("the database was used inside slow_work_then_write()")


def watch_writes(engine) -> None:
    """Report a write made by a unit that began as a reader (any database, so
    a missing ``@writes`` shows on PostgreSQL runs too)."""

    @event.listens_for(engine, "before_cursor_execute")
    def _check(_connection, _cursor, statement, _parameters, _context, _executemany):
        if _mode.get() == READ and statement.lstrip()[:7].upper().startswith(_WRITE_VERBS):
            warnings.warn(f"a read-only unit wrote: {statement.split(None, 3)[:3]}", ReadUnitWrote, stacklevel=2)


# --- the edges ----------------------------------------------------------------------


@contextmanager
def unit(*, write: bool = True) -> Iterator[None]:
    """One unit of work for a job or a CLI command: committed at the end,
    rolled back whole if anything in it fails."""
    token = _mode.set(WRITE if write else READ)
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        _mode.reset(token)


@contextmanager
def as_reader() -> Iterator[None]:
    """Begin what starts in this block as a reader would (a deferred BEGIN)."""
    token = _mode.set(READ)
    try:
        yield
    finally:
        _mode.reset(token)


def writes(view):
    """Mark a GET view that writes (an audited page): its unit begins as a writer."""
    view.unit_mode = WRITE
    return view


def reads_first(view):
    """Mark a POST view whose unit reads, does slow work, then calls ``begin_write()``."""
    view.unit_mode = READ
    return view


def begin_write() -> None:
    """End the read-only start of this unit and go on as a writer.

    For units that do slow work between reading and writing, so that the
    database's write lock is not held during it. What was read is expired and
    read again; what was decided from it must be re-checked by the writes
    themselves (conditional UPDATEs), since others may have written meanwhile."""
    if _mode.get() == WRITE:
        return
    session = db.session
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("begin_write() after changes were made in a read-only unit")
    session.commit()  # ends the read snapshot; nothing was written
    _mode.set(WRITE)


@contextmanager
def slow_work_then_write() -> Iterator[None]:
    """Slow work that needs no database (argon2 hashes) between a unit's reads
    and its writes. The read snapshot ends and the connection goes back to the
    pool before it, so for its whole length the unit holds no lock, no
    connection another request could use, and no snapshot that would hold back
    a WAL checkpoint. Using the database inside the block raises. After it the
    unit goes on as a writer, as after ``begin_write()``: read what you need
    before the block; what was read is read again, under the write lock, when
    it is next used."""
    begin_write()
    token = _mode.set(NO_DATABASE)
    try:
        yield
    finally:
        _mode.reset(token)


@contextmanager
def best_effort_write() -> Iterator[bool]:
    """A small bookkeeping write inside a reader (a session's last-seen time).

    It is tried in a SAVEPOINT; when SQLite will not let the reader become a
    writer just now, it is given up (the next request tries again) instead of
    failing the page. Yields nothing useful; the block runs as a writer."""
    token = _mode.set(WRITE)
    try:
        with db.session.begin_nested():
            yield True
    except OperationalError as exc:
        if "locked" not in str(exc.orig) and "busy" not in str(exc.orig).lower():
            raise
    finally:
        _mode.reset(token)


def core_execute(statement, params: dict | list[dict] | None = None):
    """Run a Core statement (a counter's UPDATE, a claim) on this unit's
    connection, without the ORM's per-statement work (execution events,
    result wrapping, session synchronisation), which on a hot path such as the
    sign-in costs more than the statement itself. Pending changes are flushed
    first, as the ORM's autoflush would. The session is not told what changed:
    the caller expires or sets what it wrote. ``params`` fill ``bindparam``s
    of a statement built once at import; a list of them runs it once per item."""
    session = db.session
    session.flush()
    return session.connection().execute(statement, params or {})


def update_row(obj, **values) -> None:
    """Write ``values`` to the row of the loaded object ``obj`` in one UPDATE
    by primary key on this unit's connection, and let ``obj`` hold them as
    already saved: its next read costs no SELECT and the flush has nothing to
    do. Plain values only; a value the database works out (a counter plus one)
    goes through ``core_execute`` and the attribute is expired instead."""
    session = db.session
    session.flush()  # a new object gets its key; earlier changes go first
    state = inspect(obj)
    (key,) = state.identity  # the key it was loaded or saved with: read without loading anything
    session.connection().execute(_row_update(state.mapper, tuple(values)), {"_key": key, **values})
    for name, value in values.items():
        set_committed_value(obj, name, value)


@lru_cache(maxsize=64)
def _row_update(mapper, names: tuple[str, ...]):
    # One statement per model and set of attributes, built once with bind
    # parameters: building and caching a new UPDATE costs more than running it.
    (primary_key,) = mapper.primary_key
    return (
        update(mapper.local_table)
        .where(primary_key == bindparam("_key"))
        .values({mapper.columns[name]: bindparam(name) for name in names})
    )


def on_commit(callback) -> None:
    """Run ``callback`` once this unit has committed (move stored files into
    place, hand queued messages to their senders)."""
    db.session.info.setdefault("on_commit", []).append(callback)


def on_rollback(callback) -> None:
    """Run ``callback`` if this unit ends without committing (remove staged files)."""
    db.session.info.setdefault("on_rollback", []).append(callback)


def remembered() -> dict:
    """A dict that lives as long as the current transaction, for reads a unit
    makes more than once (the browser's password step, a user's methods): what
    is kept here is forgotten when the transaction ends, so nothing read in one
    transaction is trusted in the next."""
    return db.session.info.setdefault("remembered", {})


@event.listens_for(Session, "after_commit")
def _run_commit_callbacks(session):
    session.info.pop("on_rollback", None)
    for callback in session.info.pop("on_commit", []):
        callback()


@event.listens_for(Session, "after_transaction_end")
def _run_rollback_callbacks(session, transaction):
    if transaction.parent is not None or transaction.nested:
        return
    session.info.pop("remembered", None)
    session.info.pop("on_commit", None)
    for callback in session.info.pop("on_rollback", []):
        callback()


def lock_row(model, *row_ids: int) -> None:
    """Serialise writers on rows: two tabs of one seller, a seller and a
    reviewer on one case, two managers changing each other's roles.

    PostgreSQL takes the row locks, in id order so that two units locking the
    same rows cannot deadlock. They are ``FOR NO KEY UPDATE`` locks, the ones
    an UPDATE of the row takes: they wait for each other and for such UPDATEs,
    but not for a unit inserting a row that refers to the locked one (a
    security event of the user), whose foreign-key check only needs the key
    to stay; ``FOR UPDATE`` would make that insert wait, and deadlock with a
    unit that holds another row the locker wants next. Then everything this
    unit read before is read again when next used (loaded objects are
    expired, and what ``remembered()`` kept is dropped): a check made after
    ``lock_row`` sees what the unit that held the lock committed. On SQLite the unit already
    holds the database's write lock, and all it has read was read under it,
    so there is nothing to do."""
    lock_rows(model, model.id.in_(set(row_ids)))


def lock_rows(model, *criteria) -> None:
    """``lock_row`` for the rows of ``model`` that ``criteria`` select (every
    session of a user), locked in id order."""
    session = db.session
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(select(model.id).where(*criteria).order_by(model.id).with_for_update(key_share=True))
    session.expire_all()  # flushed first by the SELECT's autoflush: nothing unsaved is lost
    session.info.pop("remembered", None)


def one_at_a_time(step: str) -> None:
    """Serialise a step whose check no row lock can cover, because what it
    looks for is rows other units are inserting (a new document's hash against
    everyone else's). PostgreSQL: a transaction-level advisory lock named by
    ``step``, held until the unit ends, so the next unit's lookup sees what
    this one inserted. SQLite already runs one writer at a time."""
    session = db.session
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(select(func.pg_advisory_xact_lock(advisory_key(step))))


def advisory_key(name: str) -> int:
    """The PostgreSQL advisory lock key of ``name``, fixed across processes and releases."""
    return zlib.crc32(f"recovery-desk:{name}".encode())


def init_app(app: Flask) -> None:
    with app.app_context():
        refuse_transactions_in_slow_work(db.engine)
        if db.engine.dialect.name == "sqlite":
            enable_sqlite_pragmas(db.engine)
        watch_writes(db.engine)

    @app.before_request
    def _begin_unit():
        view = app.view_functions.get(request.endpoint)
        default = READ if request.method in SAFE_METHODS else WRITE
        g.unit_token = _mode.set(getattr(view, "unit_mode", default))

    @app.after_request
    def _commit_unit(response):
        session = db.session()
        # A page that never reached the database (the sign-in form) has nothing to commit.
        if session.in_transaction() or session.new or session.dirty or session.deleted or session.info:
            session.commit()
        return response

    @app.teardown_request
    def _end_unit(_exc):
        token = g.pop("unit_token", None)
        if token is not None:
            _mode.reset(token)
