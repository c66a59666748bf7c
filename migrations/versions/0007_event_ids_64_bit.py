"""Event ids in 64 bits: a plant that keeps years of events from many writers passes the
2,147,483,647 ids of a 32-bit column.

On PostgreSQL the column and its sequence become bigint (the table is rewritten once: on a
large table, run it in a quiet hour). SQLite's INTEGER PRIMARY KEY is already 64-bit.

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE issue_events ALTER COLUMN id TYPE bigint")
    op.execute("ALTER SEQUENCE IF EXISTS issue_events_id_seq AS bigint")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER SEQUENCE IF EXISTS issue_events_id_seq AS integer")
    op.execute("ALTER TABLE issue_events ALTER COLUMN id TYPE integer")
