"""corrections

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table('release', schema=None) as batch_op:
        batch_op.add_column(sa.Column('corrects_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_release_corrects_id', 'release', ['corrects_id'], ['id'])




def downgrade() -> None:

    with op.batch_alter_table('release', schema=None) as batch_op:
        batch_op.drop_constraint('fk_release_corrects_id', type_='foreignkey')
        batch_op.drop_column('corrects_id')


