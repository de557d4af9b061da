"""Feeds: opt-in in-seat links inferred from trips.txt block_id.

Revision ID: 0011_inseatblk
Revises: 0008_agops
Create Date: 2026-12-03 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011_inseatblk'
down_revision = '0008_agops'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('in_seat_from_blocks', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_column('in_seat_from_blocks')
