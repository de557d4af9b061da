"""Operators: the issuer algorithm of their ticket QR codes ("ed25519" or "sm2", issue 16 item 4).

Revision ID: 0007_h8q
Revises: 0001
Create Date: 2026-12-03 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_h8q'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.add_column(sa.Column('qr_alg', sa.String(length=16), nullable=False, server_default='ed25519'))


def downgrade() -> None:
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.drop_column('qr_alg')
