"""No default accounts and no secret questions (ASVS 6.3.2, 6.4.2)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from recovery_app.extensions import db as _db
from recovery_app.models import User

ROOT = Path(__file__).resolve().parents[2]


def test_a_new_database_has_no_users_at_all(app, db):
    # ASVS 6.3.2: every login is made by a person (CLI, invitation); none ships with the product
    assert db.session.execute(select(func.count(User.id))).scalar_one() == 0


def test_demo_users_get_random_passwords(app):
    cli = (ROOT / "recovery_app" / "cli.py").read_text(encoding="utf-8")
    assert 'password = "-".join(secrets.token_hex(3)' in cli


def test_no_secret_questions_anywhere(app):
    # ASVS 6.4.2: recovery is a reviewed identity case, never a question
    columns = {column.name.lower() for table in _db.metadata.sorted_tables for column in table.columns}
    assert not [name for name in columns if "question" in name or "answer" in name or "hint" in name]
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text(encoding="utf-8").lower()
        assert "secret question" not in text and "security question" not in text and "秘密の質問" not in text, template
