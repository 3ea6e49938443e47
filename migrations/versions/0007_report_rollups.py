"""Daily rollups of the managers' figures; an index for breaches by time

Revision ID: 0007_report_rollups
Revises: 0006_password_steps
Create Date: 2026-12-03 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_report_rollups'
down_revision = '0006_password_steps'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'report_rollups',
        sa.Column('zone', sa.String(length=64), nullable=False),
        sa.Column('day', sa.String(length=10), nullable=False),
        sa.Column('measure', sa.String(length=30), nullable=False),
        sa.Column('reviewer_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('key', sa.String(length=40), nullable=False),
        sa.Column('n', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('zone', 'day', 'measure', 'reviewer_id', 'key', name=op.f('pk_report_rollups')),
    )
    op.create_table(
        'report_rollup_marks',
        sa.Column('zone', sa.String(length=64), nullable=False),
        sa.Column('rolled_from', sa.DateTime(timezone=True), nullable=False),
        sa.Column('rolled_until', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('zone', name=op.f('pk_report_rollup_marks')),
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_breached_at', ['breached_at'], unique=False)


def downgrade():
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_breached_at')
    op.drop_table('report_rollup_marks')
    op.drop_table('report_rollups')
