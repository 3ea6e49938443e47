"""A passkey's signature counter holds every value WebAuthn allows (32 bits, unsigned)

Revision ID: 0010_passkey_counter
Revises: 0009_passkeys
Create Date: 2026-12-04 14:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010_passkey_counter'
down_revision = '0009_passkeys'
branch_labels = None
depends_on = None


def upgrade():
    # INTEGER stops at 2**31 - 1 on PostgreSQL; an authenticator may count to 2**32 - 1.
    with op.batch_alter_table('passkeys') as batch:
        batch.alter_column('sign_count', existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)


def downgrade():
    with op.batch_alter_table('passkeys') as batch:
        batch.alter_column('sign_count', existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)
