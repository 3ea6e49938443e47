"""The password step of a sign-in is kept server-side

Revision ID: 0006_password_steps
Revises: 0005_precheck_lookup
Create Date: 2026-12-02 19:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_password_steps'
down_revision = '0005_precheck_lookup'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'password_steps',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=True),
        sa.Column('browser', sa.String(length=300), nullable=True),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('end_reason', sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_password_steps_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_password_steps')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_password_steps_token_hash')),
    )
    with op.batch_alter_table('password_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_password_steps_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('password_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_password_steps_user_id'))
    op.drop_table('password_steps')
