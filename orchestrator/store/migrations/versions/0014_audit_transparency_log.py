"""the audit trail becomes a transparency log: events get a position in a Merkle tree, whose
complete subtrees are stored; checkpoints become signed notes (C2SP tlog-checkpoint)

Events already recorded keep their hash chain and become the first leaves, in id order,
when the sequencer first runs. The HMAC checkpoints of the chain are replaced by signed
tree heads; the first one signed after the upgrade covers every old event.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

import datetime as dt

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def upgrade() -> None:
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
        batch_op.create_index('ix_audit_event_seq', ['seq'], unique=True)
        batch_op.create_index('ix_audit_unsequenced', ['id'], unique=False,
                              postgresql_where=sa.text('seq IS NULL'),
                              sqlite_where=sa.text('seq IS NULL'))
    op.drop_table('audit_checkpoint')
    op.create_table(
        'audit_checkpoint',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tree_size', sa.BigInteger(), nullable=False),
        sa.Column('root_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('note', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_audit_checkpoint_tree_size', 'audit_checkpoint', ['tree_size'])
    op.create_table(
        'audit_tree_node',
        sa.Column('level', sa.SmallInteger(), nullable=False),
        sa.Column('idx', sa.BigInteger(), nullable=False),
        sa.Column('hash', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('level', 'idx'))
    state = op.create_table(
        'audit_tree_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('root_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.bulk_insert(state, [{"id": 1, "size": 0, "root_hash": EMPTY_ROOT,
                            "updated_at": dt.datetime.now(dt.UTC)}])


def downgrade() -> None:
    op.drop_table('audit_tree_state')
    op.drop_table('audit_tree_node')
    op.drop_index('ix_audit_checkpoint_tree_size', table_name='audit_checkpoint')
    op.drop_table('audit_checkpoint')
    op.create_table(
        'audit_checkpoint',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('event_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('signature', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_unsequenced')
        batch_op.drop_index('ix_audit_event_seq')
        batch_op.drop_column('seq')
