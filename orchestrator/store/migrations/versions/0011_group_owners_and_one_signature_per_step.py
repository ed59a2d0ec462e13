"""go-live groups with a fixed owner; one counting review signature per step and hash

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import datetime as dt

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

VALID_REVIEW_SIGNOFF = "NOT voided AND purpose = 'review'"


def upgrade() -> None:

    op.create_table('golive_group',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )

    # Each group named so far is owned by whom 0010 took for its owner: the author of its
    # first consented member not withdrawn, else of the first release that names it.
    conn = op.get_bind()
    release = sa.table('release', sa.column('id', sa.Integer()), sa.column('author', sa.String()),
                       sa.column('golive_group', sa.String()), sa.column('group_status', sa.String()),
                       sa.column('state', sa.String()))
    group = sa.table('golive_group', sa.column('name', sa.String()), sa.column('owner', sa.String()),
                     sa.column('created_at', sqlmodel.sql.sqltypes.UTCDateTime()))
    owners: dict[str, str] = {}
    fallback: dict[str, str] = {}
    rows = conn.execute(sa.select(release.c.golive_group, release.c.author, release.c.group_status,
                                  release.c.state)
                        .where(release.c.golive_group.is_not(None)).order_by(release.c.id)).all()
    for name, author, status, state in rows:
        fallback.setdefault(name, author)
        if status == 'member' and state != 'withdrawn':
            owners.setdefault(name, author)
    now = dt.datetime.now(dt.UTC)
    for name, author in fallback.items():
        conn.execute(group.insert().values(name=name, owner=owners.get(name, author), created_at=now))

    # Two signatures stored for one step of one hash (a race the row lock now prevents):
    # only the first counts, the later ones are voided before the index forbids them.
    sign_off = sa.table('sign_off', sa.column('id', sa.Integer()), sa.column('release_id', sa.Integer()),
                        sa.column('step', sa.Integer()), sa.column('content_hash', sa.String()),
                        sa.column('voided', sa.Boolean()), sa.column('purpose', sa.String()))
    seen: set[tuple] = set()
    for row_id, release_id, step, digest in conn.execute(
            sa.select(sign_off.c.id, sign_off.c.release_id, sign_off.c.step, sign_off.c.content_hash)
            .where(sign_off.c.voided == sa.false(), sign_off.c.purpose == 'review')
            .order_by(sign_off.c.id)).all():
        if (release_id, step, digest) in seen:
            conn.execute(sign_off.update().where(sign_off.c.id == row_id).values(voided=True))
        seen.add((release_id, step, digest))

    with op.batch_alter_table('sign_off', schema=None) as batch_op:
        batch_op.create_index('uq_sign_off_valid_step', ['release_id', 'step', 'content_hash'],
                              unique=True, postgresql_where=sa.text(VALID_REVIEW_SIGNOFF),
                              sqlite_where=sa.text(VALID_REVIEW_SIGNOFF))


def downgrade() -> None:

    with op.batch_alter_table('sign_off', schema=None) as batch_op:
        batch_op.drop_index('uq_sign_off_valid_step', postgresql_where=sa.text(VALID_REVIEW_SIGNOFF),
                            sqlite_where=sa.text(VALID_REVIEW_SIGNOFF))

    op.drop_table('golive_group')
