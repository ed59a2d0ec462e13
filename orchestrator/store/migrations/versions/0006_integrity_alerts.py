"""integrity alerts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('integrity_alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('detected_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('diff', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('found_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('resolved', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['delivery.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('integrity_alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_integrity_alert_delivery_id'), ['delivery_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_integrity_alert_release_id'), ['release_id'], unique=False)

    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))




def downgrade() -> None:

    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_column('checked_at')

    with op.batch_alter_table('integrity_alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_integrity_alert_release_id'))
        batch_op.drop_index(batch_op.f('ix_integrity_alert_delivery_id'))

    op.drop_table('integrity_alert')

