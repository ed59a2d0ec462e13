"""auditor query indexes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_audit_action_id', ['action', 'id'], unique=False)
        batch_op.create_index('ix_audit_actor_id', ['actor', 'id'], unique=False)
        batch_op.create_index('ix_audit_channel_id', ['channel', 'id'], unique=False)
        batch_op.create_index('ix_audit_release_id', ['release_id', 'id'], unique=False)

    with op.batch_alter_table('delivery_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_attempt_outcome_id', ['outcome', 'id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('delivery_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_attempt_outcome_id')

    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_release_id')
        batch_op.drop_index('ix_audit_channel_id')
        batch_op.drop_index('ix_audit_actor_id')
        batch_op.drop_index('ix_audit_action_id')


