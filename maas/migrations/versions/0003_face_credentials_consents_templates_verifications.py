"""Face credentials: consent records, encrypted templates, gate verification outcomes.

No image or embedding column exists: templates are AES-GCM ciphertexts (`face_templates.template_enc`).

Revision ID: 0003f
Revises: 0002t
Create Date: 2026-11-21 09:01:29.008994
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0003f'
down_revision = '0002t'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('face_verifications',
    sa.Column('validation_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('ticket_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('traveler_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('probe', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('distance', sa.Float(), nullable=True),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('model_version', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('match', sa.Boolean(), nullable=True),
    sa.Column('liveness_required', sa.Boolean(), nullable=False),
    sa.Column('liveness_passed', sa.Boolean(), nullable=True),
    sa.Column('liveness_score', sa.Float(), nullable=True),
    sa.Column('liveness_vendor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['validation_id'], ['ticket_validations.validation_id'], ),
    sa.PrimaryKeyConstraint('validation_id')
    )
    with op.batch_alter_table('face_verifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_face_verifications_ticket_id'), ['ticket_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_face_verifications_traveler_id'), ['traveler_id'], unique=False)

    op.create_table('face_consents',
    sa.Column('consent_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('traveler_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('what', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('retention_policy', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('retention_days', sa.Integer(), nullable=False),
    sa.Column('given_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_reason', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True),
    sa.ForeignKeyConstraint(['traveler_id'], ['ticket_travelers.traveler_id'], ),
    sa.PrimaryKeyConstraint('consent_id')
    )
    with op.batch_alter_table('face_consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_face_consents_traveler_id'), ['traveler_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_face_consents_user_id'), ['user_id'], unique=False)

    op.create_table('face_templates',
    sa.Column('traveler_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('consent_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('template_enc', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('key_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('model_version', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['consent_id'], ['face_consents.consent_id'], ),
    sa.ForeignKeyConstraint(['traveler_id'], ['ticket_travelers.traveler_id'], ),
    sa.PrimaryKeyConstraint('traveler_id')
    )
    with op.batch_alter_table('face_templates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_face_templates_key_id'), ['key_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('face_templates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_face_templates_key_id'))

    op.drop_table('face_templates')
    with op.batch_alter_table('face_consents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_face_consents_user_id'))
        batch_op.drop_index(batch_op.f('ix_face_consents_traveler_id'))

    op.drop_table('face_consents')
    with op.batch_alter_table('face_verifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_face_verifications_traveler_id'))
        batch_op.drop_index(batch_op.f('ix_face_verifications_ticket_id'))

    op.drop_table('face_verifications')
