"""Regulators: station metadata (grade and type per stop) for coverage audits.

Revision ID: 0004s
Revises: 0001
Create Date: 2026-11-21 09:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0004s'
down_revision = '0001'
branch_labels = ('regulator',)
depends_on = None


def upgrade() -> None:
    op.create_table('station_meta',
    sa.Column('stop_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('station_type', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('grade', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('stop_id')
    )
    with op.batch_alter_table('station_meta', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_station_meta_station_type'), ['station_type'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('station_meta', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_station_meta_station_type'))
    op.drop_table('station_meta')
