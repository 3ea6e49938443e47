"""The schema changes only through migrations: the models and the migrated
database must describe the same tables, columns, indexes and constraints."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from recovery_app.extensions import db


def test_models_match_migrations(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == [], f"models and migrations disagree; add a migration: {differences}"


def test_migrations_have_a_single_head(app):
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(app.extensions["migrate"].directory)
    assert len(script.get_heads()) == 1, "two migrations claim the same parent; chain them"
