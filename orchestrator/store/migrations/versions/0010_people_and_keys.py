"""people and keys: token prefix, expiry and revocation; disabled people; console session
generation; sign-in failures shared by every API process

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import datetime as dt

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

LEGACY_TOKEN_DAYS = 90  # tokens made before expiry existed get the default lifetime from now


def upgrade() -> None:

    op.create_table('login_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.create_index('ix_login_failure_account_at', ['account', 'at'], unique=False)
        batch_op.create_index('ix_login_failure_address_at', ['address', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_failure_at'), ['at'], unique=False)

    # literal defaults: SQLite adds these columns in place (no table copy, which foreign
    # keys from apitoken and sign_off would refuse)
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled', sa.Boolean(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), nullable=False, server_default='0'))

    with op.batch_alter_table('apitoken', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prefix', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    # Existing tokens: only their hash is stored, so they are named legacy-<id>; they
    # expire LEGACY_TOKEN_DAYS from this upgrade rather than never.
    token = sa.table('apitoken', sa.column('id', sa.Integer()), sa.column('prefix', sa.String()),
                     sa.column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime()))
    conn = op.get_bind()
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=LEGACY_TOKEN_DAYS)
    for (row_id,) in conn.execute(sa.select(token.c.id)).all():
        conn.execute(token.update().where(token.c.id == row_id)
                     .values(prefix=f"legacy-{row_id}", expires_at=expires))

    with op.batch_alter_table('apitoken', schema=None) as batch_op:
        batch_op.alter_column('prefix', existing_type=sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False)
        batch_op.alter_column('expires_at', existing_type=sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False)
        batch_op.create_unique_constraint('uq_apitoken_prefix', ['prefix'])


def downgrade() -> None:

    with op.batch_alter_table('apitoken', schema=None) as batch_op:
        batch_op.drop_constraint('uq_apitoken_prefix', type_='unique')
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('revoked_at')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('label')
        batch_op.drop_column('prefix')

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('session_generation')
        batch_op.drop_column('disabled')

    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_failure_at'))
        batch_op.drop_index('ix_login_failure_address_at')
        batch_op.drop_index('ix_login_failure_account_at')

    op.drop_table('login_failure')
