"""Clearing: used legs recognised off the gate's path (``clearing_validations.pending`` + its partial index).

Revision ID: 0010_clrec
Revises: 0002c
Create Date: 2026-12-03 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_clrec'
down_revision = '0002c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clearing_validations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index('ix_clearing_validations_pending', 'clearing_validations', ['used_at'],
                    postgresql_where=sa.text('pending'), sqlite_where=sa.text('pending'))


def downgrade() -> None:
    op.drop_index('ix_clearing_validations_pending', table_name='clearing_validations')
    with op.batch_alter_table('clearing_validations', schema=None) as batch_op:
        batch_op.drop_column('pending')
