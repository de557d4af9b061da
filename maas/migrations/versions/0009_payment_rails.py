"""Payments: what the app needs to pay (client_params) and when the provider took the money (paid_at).

Issue 16: WeChat Pay and Alipay beside Stripe; an order's rail is ``ticket_orders.provider``.

Revision ID: 0009_payrails
Revises: 0005_h1
Create Date: 2026-12-03 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009_payrails'
down_revision = '0005_h1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ticket_payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_params', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('provider_txn', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_ticket_payments_paid_at', ['paid_at'])
        batch_op.create_index('ix_ticket_payments_status', ['status'])


def downgrade() -> None:
    with op.batch_alter_table('ticket_payments', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_payments_status')
        batch_op.drop_index('ix_ticket_payments_paid_at')
        batch_op.drop_column('paid_at')
        batch_op.drop_column('provider_txn')
        batch_op.drop_column('client_params')
