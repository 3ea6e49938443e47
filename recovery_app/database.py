"""Database engine settings that the ORM does not make for us."""

from __future__ import annotations

from sqlalchemy import event


def enable_sqlite_pragmas(engine) -> None:
    """WAL, foreign keys and a busy timeout for SQLite; and let SQLAlchemy, not
    the sqlite3 module, decide when transactions begin, so that SAVEPOINTs and
    ``BEGIN`` behave as on PostgreSQL."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN")
