"""Audit log: PostgreSQL refuses TRUNCATE too (row triggers do not fire on it).

Revision ID: 0006_h3a
Revises: 0005_h3g
Create Date: 2026-12-03 08:10:00
"""

from __future__ import annotations

from alembic import op

revision = '0006_h3a'
down_revision = '0005_h3g'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # SQLite has no TRUNCATE (an unqualified DELETE is refused by its row trigger).
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
