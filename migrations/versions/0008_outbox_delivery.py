"""Outbox rows are claimed before sending and keep the provider's delivery report

Revision ID: 0008_outbox_delivery
Revises: 0007_report_rollups
Create Date: 2026-12-02 20:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_outbox_delivery'
down_revision = '0007_report_rollups'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_token', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('provider_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('delivery_status', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('delivery_error', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('delivery_reported_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_outbox_provider_id', ['provider_id'], unique=False)


def downgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_provider_id')
        batch_op.drop_column('delivery_reported_at')
        batch_op.drop_column('delivery_error')
        batch_op.drop_column('delivery_status')
        batch_op.drop_column('provider_id')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('claim_token')
