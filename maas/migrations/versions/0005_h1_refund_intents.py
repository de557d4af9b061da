"""Refund intents: the per-leg parts of a refund, recorded before the provider is called.

Revision ID: 0005_h1
Revises: 0003f
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_h1'
down_revision = '0003f'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('ticket_refunds', sa.Column('parts', sa.JSON(), nullable=True))
    op.add_column('ticket_refunds', sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_ticket_refunds_status', 'ticket_refunds', ['status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_ticket_refunds_status', table_name='ticket_refunds')
    op.drop_column('ticket_refunds', 'updated_at')
    op.drop_column('ticket_refunds', 'parts')
