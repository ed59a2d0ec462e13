"""units (政府网站集约化): a tree of organisational units; people, channels and releases
belong to one. An existing installation gets one root unit holding everything.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ROOT_CODE, ROOT_NAME = "root", "本级单位"
OWNED = ("user", "channel_instance", "release")


def upgrade() -> None:
    op.create_table(
        "unit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("review_policy", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("(id = 1) = (parent_id IS NULL)", name="ck_unit_one_root"),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["unit.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unit_code"), ["code"], unique=True)
        batch_op.create_index(batch_op.f("ix_unit_parent_id"), ["parent_id"], unique=False)

    # the root is row 1 (models.ROOT_UNIT_ID): the first row of a new table on both databases
    unit = sa.table(
        "unit",
        sa.column("id", sa.Integer()),
        sa.column("code", sa.String()),
        sa.column("name", sa.String()),
        sa.column("created_at", sqlmodel.sql.sqltypes.UTCDateTime()),
    )
    conn = op.get_bind()
    conn.execute(
        unit.insert().values(code=ROOT_CODE, name=ROOT_NAME, created_at=sa.func.current_timestamp())
    )
    root = conn.execute(sa.select(unit.c.id)).scalar_one()
    assert root == 1, f"the root unit must be row 1, got {root}"

    # every existing person, channel and release moves into the root unit (the default).
    # SQLite copies each table to add a foreign key: env.py runs migrations with foreign
    # keys off and checks them all before committing
    for table in OWNED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("unit_id", sa.Integer(), nullable=False, server_default=sa.text("1"))
            )
            batch_op.create_index(batch_op.f(f"ix_{table}_unit_id"), ["unit_id"], unique=False)
            batch_op.create_foreign_key(f"fk_{table}_unit_id", "unit", ["unit_id"], ["id"])


def downgrade() -> None:
    for table in reversed(OWNED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_unit_id", type_="foreignkey")
            batch_op.drop_index(batch_op.f(f"ix_{table}_unit_id"))
            batch_op.drop_column("unit_id")

    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unit_parent_id"))
        batch_op.drop_index(batch_op.f("ix_unit_code"))

    op.drop_table("unit")
