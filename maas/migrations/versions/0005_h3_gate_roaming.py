"""Gate devices: an explicit roaming flag (a gate without a stop validates nowhere unless it is set).

Revision ID: 0005_h3g
Revises: 0001
Create Date: 2026-12-03 07:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_h3g'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('gate_devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('roaming', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('gate_devices', schema=None) as batch_op:
        batch_op.drop_column('roaming')
