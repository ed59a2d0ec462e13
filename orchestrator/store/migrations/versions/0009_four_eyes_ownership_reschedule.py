"""four-eyes over every revision, co-authors, go-live group consent, signed reschedules

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

CONTRIBUTED = ('release.created', 'release.edited', 'release.submitted', 'release.scheduled')


def upgrade() -> None:
    with op.batch_alter_table('release', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('co_authors', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('contributors', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('reschedule_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('reschedule_to', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('held', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('sign_off', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='review'))

    # a release held the old way (scheduled, no time) stays held
    op.execute("UPDATE release SET held = true WHERE state = 'scheduled' AND go_live_at IS NULL")
    # existing groups were formed before consent existed: their members stay members
    op.execute("UPDATE release SET group_status = 'member' WHERE golive_group IS NOT NULL")
    # who already wrote, edited or submitted a revision, from the audit trail
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT release_id, actor FROM audit_event WHERE release_id IS NOT NULL "
        "AND action IN :actions ORDER BY id").bindparams(sa.bindparam('actions', expanding=True)),
        {'actions': list(CONTRIBUTED)}).all()
    found: dict[int, list[str]] = {}
    for release_id, actor in rows:
        names = found.setdefault(release_id, [])
        if actor not in names:
            names.append(actor)
    release = sa.table('release', sa.column('id', sa.Integer), sa.column('contributors', sa.JSON))
    for release_id, names in found.items():
        conn.execute(release.update().where(release.c.id == release_id).values(contributors=names))


def downgrade() -> None:
    with op.batch_alter_table('sign_off', schema=None) as batch_op:
        batch_op.drop_column('purpose')
    with op.batch_alter_table('release', schema=None) as batch_op:
        batch_op.drop_column('held')
        batch_op.drop_column('reschedule_to')
        batch_op.drop_column('reschedule_by')
        batch_op.drop_column('contributors')
        batch_op.drop_column('co_authors')
        batch_op.drop_column('group_status')
