"""Feeds: the operator of each GTFS agency of a feed (issue 13 item 10).

Revision ID: 0008_agops
Revises: 0007_h8q
Create Date: 2026-12-03 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_agops'
down_revision = '0007_h8q'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agency_operators', sa.JSON(), nullable=False, server_default='{}'))


def downgrade() -> None:
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_column('agency_operators')
